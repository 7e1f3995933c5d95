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
from collections.abc import Callable
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
from common.resp3 import ReplyBuffer  # noqa: E402
from common.strings import StringCommands, parse_long_double  # noqa: E402
from common.zset import ZSet  # noqa: E402
from common.zset_commands import MoreSortedSetCommands, keys_after_numkeys, parse_mpop  # noqa: E402
from common.zset_listpack import MAX_FLAT_ENTRIES, ListpackZSet  # noqa: E402

chapter16 = load_chapter(16)  # the server this chapter extends, persistence included
chapter14 = chapter16.chapter14  # its keyspace: what the new commands work on


def add_commands() -> None:
    """The new families join chapter 14's command table, and the blocking
    pops its seams; chapter 16 logs their writes as it logs every write."""
    # Small sorted sets start flat (common/zset_listpack.py), within Redis's settings.
    chapter14.SORTED_SETS.use_encoding(ListpackZSet)
    config = chapter14.ADMIN.config
    for name in ("zset-max-listpack-entries", "zset-max-ziplist-entries"):  # Redis 7 keeps the old name as an alias
        config.add_integer(name, lambda: ListpackZSet.max_entries, set_max_entries, maximum=MAX_FLAT_ENTRIES)
    for name in ("zset-max-listpack-value", "zset-max-ziplist-value"):
        config.add_integer(name, lambda: ListpackZSet.max_value, set_max_value, memory=True)
    for family in (StringCommands(chapter14), KeyCommands(chapter14), MORE_SORTED_SETS):
        chapter14.COMMANDS.add_all(family.specs())
    blocking = ("write", "noscript", "blocking")
    chapter14.COMMANDS.add(b"bzpopmin", CommandSpec(bzpopmin, -3, ("write", "noscript", "fast", "blocking"), 1, -2, 1))
    chapter14.COMMANDS.add(b"bzpopmax", CommandSpec(bzpopmax, -3, ("write", "noscript", "fast", "blocking"), 1, -2, 1))
    chapter14.COMMANDS.add(b"bzmpop", CommandSpec(bzmpop, -5, blocking, find_keys=keys_after_numkeys(1)))
    for name in (b"bzpopmin", b"bzpopmax", b"bzmpop"):
        chapter16.append_only.LOGGED_AS[name] = lambda args: []  # pop() logs the ZPOPMIN or ZPOPMAX it did
    # Chapter 14's seams: note the keys writes may feed, serve the clients
    # parked on them once the command is over, and, before the replies go
    # out, time them out and let the woken go on; wake the loop for the
    # soonest timeout.
    chapter14.COMMANDS.after_write.append(signal_keys_as_ready)
    chapter14.COMMANDS.after_command.append(serve_clients_blocked_on_keys)
    chapter14.before_sleep_tasks.append(serve_woken)
    chapter14.timers.append(next_timeout_ms)
    chapter14.ADMIN.extra_info.setdefault("clients", []).append(lambda: {"blocked_clients": len(parked)})
    chapter14.idle_exemptions.append(lambda conn: conn.blocked)  # its own timeout ends its wait, as Redis's
    # Logged with the deadline they set, not the time they were given (chapter 16's rule).
    relative_time = chapter16.append_only.RELATIVE_TIME
    relative_time[b"setex"] = (lambda args: True, 2)
    relative_time[b"psetex"] = (lambda args: True, 2)
    # As Redis propagates them: GETEX as the PEXPIREAT, PERSIST or DEL it
    # amounts to; ZMPOP as the ZPOPMIN or ZPOPMAX it did, with its count.
    logged_as = chapter16.append_only.LOGGED_AS
    logged_as[b"getex"] = getex_logged_as
    logged_as[b"zmpop"] = lambda args: []
    MORE_SORTED_SETS.log_as = lambda commands: [chapter16.append_only.log_command(c[0], c[1:]) for c in commands]


def getex_logged_as(args: list[bytes]) -> list[list[bytes]]:
    """What GETEX changed: a deadline as PEXPIREAT (DEL if it had already
    passed), PERSIST as PERSIST, nothing without an option."""
    key, options = args[0], {arg.lower() for arg in args[1:]}
    if b"persist" in options:
        return [[b"PERSIST", key]]
    if not options & {b"ex", b"px", b"exat", b"pxat"}:
        return []
    if chapter14.keyspace.lookup(key) is None:
        return [[b"DEL", key]]
    deadline = chapter14.deadline_of(key)
    return [[b"PEXPIREAT", key, b"%d" % deadline]] if deadline is not None else []


def set_max_entries(value: int) -> None:
    ListpackZSet.max_entries = value


def set_max_value(value: int) -> None:
    ListpackZSet.max_value = value


# --- blocking pops ----------------------------------------------------------------------
# BZPOPMIN, BZPOPMAX and BZMPOP pop at once if they can. If every key is
# empty, the client is parked: it gets no reply, and its further requests
# wait unexecuted (chapter 14's Connection.blocked), while the server goes on serving
# everybody else. The first write that puts members in one of its keys
# wakes it, once that command is over, first come first served; or its
# timeout does, with a nil reply. The event loop never waits for it.

MORE_SORTED_SETS = MoreSortedSetCommands(chapter14.SORTED_SETS)


class Blocked(HeapItem):
    """A parked client: the keys it waits on, the type of value that can
    serve it, how to serve it (a pop, with its options) and until when
    (time.monotonic(); inf: no timeout). An item of the `timeouts` heap.
    Chapter 17 parks clients for sorted sets; a server with more types
    parks them for its own (Redis's blocked.c, one btype per type)."""

    __slots__ = ("conn", "keys", "value_type", "serve")

    def __init__(self, conn: Any, keys: list[bytes], value_type: type, serve: Callable[[bytes, ReplyBuffer], None],
                 deadline: float) -> None:  # fmt: skip
        super().__init__(deadline)
        self.conn, self.keys, self.value_type, self.serve = conn, keys, value_type, serve


waiting: dict[bytes, deque[Blocked]] = {}  # key -> the clients parked on it, in arrival order
timeouts = Heap()  # every parked client, the soonest deadline on top
parked: dict[int, Blocked] = {}  # id(connection) -> its Blocked: INFO's blocked_clients
ready_keys: dict[bytes, None] = {}  # keys written to that clients wait on, in order (Redis's server.ready_keys)
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
            pop(key, out, highest, count, multi, woken=False)
            return
    if chapter14.current_client.deny_blocking:  # may not wait (inside a transaction): as if timed out
        out.null_array()
        return
    park(keys, timeout, ZSet, lambda key, reply: pop(key, reply, highest, count, multi, woken=True))


def park(keys: list[bytes], timeout: float, value_type: type, serve: Callable[[bytes, ReplyBuffer], None]) -> None:
    """Park the current client on `keys` for `timeout` seconds (0: for
    ever), until one holds a `value_type`: then `serve(key, reply)` pops
    from it for the client (Redis's blockForKeys)."""
    conn = chapter14.current_client
    record = Blocked(conn, list(dict.fromkeys(keys)), value_type, serve,
                     time.monotonic() + timeout if timeout else math.inf)  # fmt: skip
    conn.blocked = True
    for key in record.keys:
        waiting.setdefault(key, deque()).append(record)
    timeouts.push(record)
    parked[id(conn)] = record


def pop(key: bytes, out: ReplyBuffer, highest: bool, count: int | None, multi: bool, woken: bool) -> None:
    """Pop from the sorted set at `key` (there is one) and reply; logged
    to the AOF as the ZPOPMIN or ZPOPMAX it amounts to, as Redis does. A
    pop for a client `woken` after a write is a change of its own (chapter
    16's propagate); a pop at once is part of its command's."""
    _, taken = MORE_SORTED_SETS.pop([key], out, highest, count if multi else None, nested=multi, with_key=True)
    command = [b"ZPOPMAX" if highest else b"ZPOPMIN", key] + ([b"%d" % taken] if multi else [])
    if woken:
        chapter16.propagate(command)
    else:
        chapter16.append_only.log_command(command[0], command[1:])


def signal_keys_as_ready(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer,
                         reply_start: int) -> None:  # fmt: skip
    """After a write that did not fail (chapter 14's after_write): note
    the keys it may have fed that clients wait on (Redis's signalKeyAsReady)."""
    if not waiting or len(out) == reply_start:
        return
    for key in spec.keys(args):
        signal_key_as_ready(key)


def signal_key_as_ready(key: bytes) -> None:
    """Note that `key` may now serve the clients parked on it, if any (a
    write did it, or a blocked client served, which pushed to it)."""
    if key in waiting:
        ready_keys[key] = None


def serve_clients_blocked_on_keys() -> None:
    """Once the command is over (chapter 14's after_command: after the
    whole of a transaction, never inside it), serve the clients parked on
    the keys it fed, before any other command runs (Redis's
    handleClientsBlockedOnKeys)."""
    while ready_keys:
        key = next(iter(ready_keys))
        del ready_keys[key]
        queue = waiting.get(key)
        while queue:
            record = queue[0]
            entry = chapter14.lookup_live(key)
            if entry is None or not isinstance(entry.value, record.value_type):
                break  # nothing there it can take (a SET, a DEL): they wait on
            unpark(record)
            if record.conn.sock.fileno() == -1:
                continue  # gone while parked
            record.conn.blocked = False
            record.serve(key, record.conn.outgoing)
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


def serve_woken() -> None:
    """Once per loop iteration, before the replies go out (chapter 14's
    before_sleep_tasks, so before chapter 16 writes the AOF): time out
    parked clients, with a nil reply; let every client given its reply go
    on with the requests it sent meanwhile, its replies sent with the rest."""
    global next_sweep
    if not parked and not woken:
        return  # nobody waits: nothing to time out, sweep or resume
    now = time.monotonic()
    while (record := timeouts.peek()) is not None and record.deadline <= now:
        unpark(record)
        if record.conn.sock.fileno() != -1:
            record.conn.blocked = False
            record.conn.outgoing.null_array()
            woken.append(record.conn)
    if now >= next_sweep:  # parked clients gone (closed by the idle timer or a reset): forget them
        next_sweep = now + 1
        for record in [record for record in parked.values() if record.conn.sock.fileno() == -1]:
            unpark(record)
    for conn in chapter14.clients_pending_write.values():  # a parked client that hung up is forgotten at once
        record = parked.get(id(conn))
        if record is not None and (conn.input_closed or conn.closing):
            unpark(record)
    for conn in woken:
        chapter14.execute_requests(conn)
        chapter14.clients_pending_write[id(conn)] = conn
    woken.clear()


def next_timeout_ms() -> int | None:
    """When the soonest parked client times out (chapter 14's timers)."""
    record = timeouts.peek()
    if record is None or record.deadline == math.inf:
        return 1000 if parked else None  # at least the sweep for closed connections
    return min(max(0, math.ceil((record.deadline - time.monotonic()) * 1000)), 1000)


def main() -> None:
    chapter16.serve_chapter("Chapter 17: the full API", chapter16.add_options, add_commands)


if __name__ == "__main__":
    main()
