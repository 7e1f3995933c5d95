"""Chapter 17 (beyond the book): the rest of the API of the types the book builds.

The book teaches the machinery: a hashtable, a sorted set, timers, TTLs.
A Redis user reaches for the whole API of those types. This chapter adds
it, family by family, each in a common/ module of its own:

* strings (common/strings.py): SETNX, SETEX, PSETEX, GETSET, GETDEL,
  GETEX, APPEND, STRLEN, GETRANGE, SETRANGE, MGET, MSET, MSETNX, INCR,
  INCRBY, DECR, DECRBY, INCRBYFLOAT (in C's long double, as Redis);
* keys (common/keys.py): RENAME, RENAMENX, COPY, RANDOMKEY, TOUCH, TIME;
* SCAN and ZSCAN, the lesson of the chapter: a cursor that survives the
  progressive resizing of chapter 08's hashtable (HMap.scan);
* sorted sets (common/zset_commands.py): ZPOPMIN, ZPOPMAX, ZMPOP,
  ZREMRANGEBYRANK, ZREMRANGEBYSCORE, the lexicographic ZRANGEBYLEX,
  ZREVRANGEBYLEX, ZLEXCOUNT, ZREMRANGEBYLEX, ZRANGE with BYLEX,
  ZRANGESTORE, ZRANDMEMBER, and the set operations ZUNION, ZINTER, ZDIFF,
  their STORE forms and ZINTERCARD.

* blocking pops, the second lesson: BZPOPMIN, BZPOPMAX and BZMPOP park
  their client until a write feeds one of its keys, first come first
  served, or its timeout passes; the event loop never waits (see the
  section "blocking pops" below).

* OBJECT ENCODING, and the third lesson: small sorted sets are kept flat,
  as Redis's listpack, and indexed (chapter 11's ZSet) once they grow past
  zset-max-listpack-entries or -value (common/zset_listpack.py).

Not here: LCS.

Everything else is chapter 16's server, imported unchanged, persistence
included: the new write commands are logged to the AOF like the others,
SETEX, PSETEX and GETEX with the absolute deadline they set.

    make run-chapter 17
    redis-cli MSET a 1 b 2
    redis-cli INCRBYFLOAT a 0.1
    redis-cli SCAN 0 MATCH "*" COUNT 100
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.commands import CommandSpec  # noqa: E402
from common.heap import Heap, HeapItem  # noqa: E402
from common.keys import KeyCommands  # noqa: E402
from common.net import parse_options  # noqa: E402
from common.resp import encode_command  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402
from common.strings import StringCommands, parse_long_double  # noqa: E402
from common.zset import ZSet  # noqa: E402
from common.zset_commands import MoreSortedSetCommands, parse_mpop  # noqa: E402
from common.zset_listpack import MAX_FLAT_ENTRIES, ListpackZSet  # noqa: E402

chapter16 = load_chapter(16)  # the server this chapter extends, persistence included
chapter14 = chapter16.chapter14  # its keyspace: what the new commands work on


def add_commands() -> None:
    """The new families join chapter 14's command table before chapter 16
    wraps its write commands for the AOF, so they are logged too."""
    # Small sorted sets start flat (common/zset_listpack.py), within Redis's settings.
    chapter14.SORTED_SETS.use_encoding(ListpackZSet)
    config = chapter14.ADMIN.config
    for name in ("zset-max-listpack-entries", "zset-max-ziplist-entries"):  # Redis 7 keeps the old name as an alias
        config.add_integer(name, lambda: ListpackZSet.max_entries, set_max_entries, maximum=MAX_FLAT_ENTRIES)
    for name in ("zset-max-listpack-value", "zset-max-ziplist-value"):
        config.add_integer(name, lambda: ListpackZSet.max_value, set_max_value, memory=True)
    for family in (StringCommands(chapter14), KeyCommands(chapter14), MORE_SORTED_SETS):
        for name, spec in family.specs().items():
            chapter14.COMMANDS.add(name, spec)
    blocking = ("write", "noscript", "blocking")
    chapter14.COMMANDS.add(b"bzpopmin", CommandSpec(bzpopmin, -3, blocking, 1, -2, 1))
    chapter14.COMMANDS.add(b"bzpopmax", CommandSpec(bzpopmax, -3, blocking, 1, -2, 1))
    chapter14.COMMANDS.add(b"bzmpop", CommandSpec(bzmpop, -5, blocking))
    for name in (b"bzpopmin", b"bzpopmax", b"bzmpop"):
        chapter16.LOGGED_AS[name] = lambda args: []  # pop() logs the ZPOPMIN or ZPOPMAX it did
    # Chapter 16's extension points: serve parked clients after writes, time them out in the loop.
    chapter16.after_write.append(wake_clients)
    chapter16.loop_steps.append(serve_woken)
    chapter16.wakeups.append(next_timeout_ms)
    chapter14.ADMIN.extra_info.setdefault("clients", []).append(lambda: {"blocked_clients": len(parked)})
    # Logged with the deadline they set, not the time they were given (chapter 16's rule).
    chapter16.RELATIVE_TIME[b"setex"] = (lambda args: True, 2)
    chapter16.RELATIVE_TIME[b"psetex"] = (lambda args: True, 2)
    chapter16.RELATIVE_TIME[b"getex"] = (chapter16.relative_options_from(1), None)


def set_max_entries(value: int) -> None:
    ListpackZSet.max_entries = value


def set_max_value(value: int) -> None:
    ListpackZSet.max_value = value


# --- blocking pops ----------------------------------------------------------------------
# BZPOPMIN, BZPOPMAX and BZMPOP pop at once if they can. If every key is
# empty, the client is parked: it gets no reply, and its further requests
# wait unexecuted (ReplyBuffer.blocked), while the server goes on serving
# everybody else. The first write that puts members in one of its keys
# wakes it, right after that command, first come first served; or its
# timeout does, with a nil reply. The event loop never waits for it.

MORE_SORTED_SETS = MoreSortedSetCommands(chapter14.SORTED_SETS)


class Blocked(HeapItem):
    """A parked client: what it waits for and until when (time.monotonic();
    inf: no timeout). An item of the `timeouts` heap."""

    __slots__ = ("conn", "keys", "highest", "count", "multi")

    def __init__(self, conn: Any, keys: list[bytes], highest: bool, count: int | None, multi: bool,
                 deadline: float) -> None:  # fmt: skip
        super().__init__(deadline)
        self.conn, self.keys, self.highest, self.count, self.multi = conn, keys, highest, count, multi


waiting: dict[bytes, deque[Blocked]] = {}  # key -> the clients parked on it, in arrival order
timeouts = Heap()  # every parked client, the soonest deadline on top
parked: dict[int, Blocked] = {}  # id(connection) -> its Blocked: INFO's blocked_clients
woken: list[Any] = []  # connections given their reply since the loop last looked
next_sweep = 0.0  # when to look for parked clients whose connection closed


def bzpopmin(args: list[bytes], out: ReplyBuffer) -> None:
    """BZPOPMIN key [key ...] timeout"""
    pop_or_block(args[:-1], args[-1], out, highest=False, count=None, multi=False)


def bzpopmax(args: list[bytes], out: ReplyBuffer) -> None:
    """BZPOPMAX key [key ...] timeout"""
    pop_or_block(args[:-1], args[-1], out, highest=True, count=None, multi=False)


def bzmpop(args: list[bytes], out: ReplyBuffer) -> None:
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]"""
    parsed = parse_mpop(args[1:], out)
    if parsed is not None:
        keys, highest, count = parsed
        pop_or_block(keys, args[0], out, highest, count, multi=True)


def parse_timeout(text: bytes, out: ReplyBuffer) -> float | None:
    """Seconds to wait (0: for ever), read as Redis reads it (a long double,
    rounded up to the millisecond); None after replying an error."""
    value = parse_long_double(text)
    if value is None:
        out.error("ERR timeout is not a float or out of range")
        return None
    # Redis converts to a 64-bit integer of milliseconds; on x86-64 an
    # infinite or too large value becomes its most negative one.
    milliseconds = math.ceil(value * 1000) if isinstance(value, Fraction) else -1
    if milliseconds < 0 or milliseconds > 2**63 - 1:
        out.error("ERR timeout is negative")
        return None
    return milliseconds / 1000


def pop_or_block(keys: list[bytes], timeout_text: bytes, out: ReplyBuffer, highest: bool, count: int | None,
                 multi: bool) -> None:  # fmt: skip
    timeout = parse_timeout(timeout_text, out)
    if timeout is None:
        return
    for key in keys:
        zset = chapter14.SORTED_SETS.lookup_zset(key, out)
        if zset is False:
            return
        if zset:
            pop(key, out, highest, count, multi)
            return
    conn = chapter14.current_client
    record = Blocked(conn, list(dict.fromkeys(keys)), highest, count, multi,
                     time.monotonic() + timeout if timeout else math.inf)  # fmt: skip
    out.blocked = True
    for key in record.keys:
        waiting.setdefault(key, deque()).append(record)
    timeouts.push(record)
    parked[id(conn)] = record


def pop(key: bytes, out: ReplyBuffer, highest: bool, count: int | None, multi: bool) -> None:
    """Pop from the sorted set at `key` (there is one) and reply; logged
    to the AOF as the ZPOPMIN or ZPOPMAX it amounts to, as Redis does."""
    taken = MORE_SORTED_SETS.pop([key], out, highest, count if multi else None, nested=multi, with_key=True)
    if chapter16.aof is not None and not chapter16.loading:
        command = [b"ZPOPMAX" if highest else b"ZPOPMIN", key] + ([b"%d" % taken] if multi else [])
        chapter16.aof.buffer += encode_command(*command)


def wake_clients(name: bytes, args: list[bytes]) -> None:
    """After a write (chapter 16's after_write): serve the clients parked on
    the keys it may have fed, now, before any other command runs."""
    for key in [arg for arg in args if arg in waiting]:
        queue = waiting.get(key)
        while queue:
            entry = chapter14.lookup_live(key)
            if entry is None or not isinstance(entry.value, ZSet):
                break  # no sorted set there (a SET, a DEL): they wait on
            record = queue[0]
            unpark(record)
            if record.conn.sock.fileno() == -1:
                continue  # gone while parked
            record.conn.outgoing.blocked = False
            pop(key, record.conn.outgoing, record.highest, record.count, record.multi)
            chapter16.changes_since_save += 1
            woken.append(record.conn)


def unpark(record: Blocked) -> None:
    for key in record.keys:
        queue = waiting[key]
        queue.remove(record)
        if not queue:
            del waiting[key]
    if record.heap_index >= 0:
        timeouts.remove(record)
    del parked[id(record.conn)]


def serve_woken(served: list[Any]) -> list[Any]:
    """Once per loop iteration (chapter 16's loop_steps): time out parked
    clients, with a nil reply; let every client given its reply go on with
    the requests it sent meanwhile; return them, for their replies to go
    out after the AOF is written."""
    global next_sweep
    now = time.monotonic()
    while (record := timeouts.peek()) is not None and record.deadline <= now:
        unpark(record)
        if record.conn.sock.fileno() != -1:
            out = record.conn.outgoing
            out.blocked = False
            out += b"_\r\n" if out.protocol == 3 else b"*-1\r\n"  # a null array
            woken.append(record.conn)
    if now >= next_sweep:  # parked clients gone (closed by the idle timer or a reset): forget them
        next_sweep = now + 1
        for record in [record for record in parked.values() if record.conn.sock.fileno() == -1]:
            unpark(record)
    for conn in served:  # a parked client that hung up is forgotten at once
        record = parked.get(id(conn))
        if record is not None and (conn.input_closed or conn.closing):
            unpark(record)
    resumed = []
    listed = {id(conn) for conn in served}
    for conn in woken:
        chapter14.execute_requests(conn)
        if id(conn) not in listed:
            listed.add(id(conn))
            resumed.append(conn)
    woken.clear()
    return resumed


def next_timeout_ms() -> int | None:
    """When the soonest parked client times out (chapter 16's wakeups)."""
    record = timeouts.peek()
    if record is None or record.deadline == math.inf:
        return 1000 if parked else None  # at least the sweep for closed connections
    return min(max(0, math.ceil((record.deadline - time.monotonic()) * 1000)), 1000)


def main() -> None:
    options = parse_options("Chapter 17: the full API", chapter16.add_options, client_limits=True)
    add_commands()
    chapter16.run(options)


if __name__ == "__main__":
    main()
