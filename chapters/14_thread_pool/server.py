"""Chapter 14: a thread pool, so freeing a huge value does not stall the loop.

Deleting a key is O(1) for a string, but a sorted set of a million members
is a million nodes to free, the best part of a second during which the
single-threaded event loop answers nobody. As in the book, this server hands
such work to a thread pool (common/thread_pool.py): DEL unlinks the key at
once, replies, and a worker frees the set in the background. UNLINK, and
FLUSHALL/FLUSHDB ASYNC, do the same, as in Redis.

Python adds a twist the book's C does not have: the GIL. Only one thread
runs Python code at a time, so a worker that frees a million nodes in one
uninterruptible step (one `del` dropping the last reference) holds the
interpreter throughout and the event loop waits just as long. The worker
therefore frees the set in slices of --free-slice nodes, yielding the GIL
between them, so the event loop waits a slice at most, not a whole set.
chapters/14_thread_pool/stall_bench.py measures both ways.

    make run-chapter 14
    python chapters/14_thread_pool/stall_bench.py
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import select
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.admin import ServerAdmin  # noqa: E402
from common.commands import CommandSpec, CommandTable, wrong_arity_message  # noqa: E402
from common.dlist import DList, DListNode  # noqa: E402
from common.hashtable import HMap, HNode  # noqa: E402
from common.net import Acceptor, create_listener, log, max_clients_for_fd_limit, parse_options, serve  # noqa: E402
from common.glob import compile_glob  # noqa: E402
from common.heap import Heap  # noqa: E402
from common.resp import ProtocolError, RequestParser, parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer, hello  # noqa: E402
from common.thread_pool import ThreadPool  # noqa: E402
from common.zset import ZNode, ZSet  # noqa: E402

# Bytes read per event, as Redis (PROTO_IOBUF_LEN): every request in them
# runs before any other client is served, so a pipelining client may hold
# the loop that long. Measured on chapter 14 loading 1M keys: the longest PING of
# another client was 13 ms reading 64 KB at a time, 5.6 ms at 16 KB.
RECV_SIZE = 16 * 1024
# Past this much unsent output, a client's further requests wait unexecuted
# until the kernel has taken some of it. A single reply may exceed it.
MAX_OUTPUT = 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds; --idle-timeout sets it, 0 turns it off
# poll() takes a C int of milliseconds (24.8 days at most): a timer farther
# off than this is looked at again after one such sleep.
MAX_SLEEP_MS = 60_000
# Expired keys deleted per loop iteration, at most: the rest wait for the
# next iteration, so clients are served in between (the book's k_max_works).
MAX_EXPIRE_WORK = 2000
# Sorted sets larger than this are freed by the thread pool, not by the
# event loop; --lazy-free-threshold sets it (0: never use the pool).
DEFAULT_LAZY_FREE_THRESHOLD = 1000
# Nodes a worker frees between two chances for the event loop to take the
# GIL; --free-slice sets it (0: all at once, to watch the GIL stall the loop).
DEFAULT_FREE_SLICE = 1000

# --- the keyspace ----------------------------------------------------------------


class Entry(HNode):
    """A key and its value: the hashtable node itself (it inherits the
    hashtable's `key` and `hnext`), so a key costs one object.
    The value is a string (bytes) or a sorted set (ZSet). A key's TTL is
    not here but in an Expiry of its own, if it has one.
    """

    __slots__ = ("value",)

    def __init__(self, key: bytes, value: bytes | ZSet) -> None:
        # The hashtable's slots are set here rather than by super().__init__():
        # one Python call less for every new key.
        self.key = key
        self.hnext = None
        self.value = value


class Expiry(HNode):
    """A key's time to live: a node of the `expires` table, under the same
    key as its entry, and an item of the expiry heap. `deadline` is when
    the key expires (Unix time in milliseconds), `heap_index` its place in
    the heap.

    Unlike the book, whose entries hold their heap index, the TTL is kept
    apart, as Redis keeps TTLs in a second dictionary (db->expires): a key
    without one pays nothing for it. Two more slots on every entry would
    cost 16 MB per million keys, a tenth of a small key's memory.
    """

    __slots__ = ("deadline", "heap_index")

    def __init__(self, key: bytes, deadline: int) -> None:
        self.key = key
        self.hnext = None
        self.deadline = deadline
        self.heap_index = -1


keyspace = HMap()  # key -> Entry
# The class of a new sorted set. Chapter 17 starts small ones in a compact
# encoding (common/zset_listpack.py); isinstance(value, ZSet) holds for both.
SortedSet: type[ZSet] = ZSet
expires = HMap()  # key -> Expiry, for the keys that have a TTL
expiry_heap = Heap()  # those same Expiry objects, soonest deadline on top
# Set up by main(): the pool that frees large values, None if disabled.
worker_pool: ThreadPool | None = None
lazy_free_threshold = DEFAULT_LAZY_FREE_THRESHOLD
free_slice = DEFAULT_FREE_SLICE


def now_ms() -> int:
    """Unix time in milliseconds: TTLs are wall-clock times, as EXPIREAT shows."""
    return time.time_ns() // 1_000_000


def lookup_live(key: bytes) -> Entry | None:
    """The entry at `key`, or None if there is none or it has expired; an
    expired key is deleted on the spot (lazy expiration)."""
    entry = keyspace.lookup(key)
    if entry is not None and (expiry := expires.lookup(key)) is not None and expiry.deadline <= now_ms():
        delete_entry(entry)
        return None
    return entry


def delete_entry(entry: Entry, background: bool = False) -> None:
    keyspace.pop(entry.key)
    expiry = expires.pop(entry.key)
    if expiry is not None:
        expiry_heap.remove(expiry)
    discard(entry.value, background)


def discard(value: bytes | ZSet, background: bool = False) -> None:
    """Free a value that is being dropped. A sorted set's tree links its
    nodes in reference cycles, which reference counting cannot free: left
    alone, they would wait for Python's cyclic garbage collector, which
    frees them all at once, stalling the server at some later moment.
    Dismantling the set frees each node now: here for a small set, on a
    worker thread for a large one, or for any set if `background`."""
    if not isinstance(value, ZSet):
        return
    if worker_pool is not None and (background or len(value) > lazy_free_threshold):
        worker_pool.submit(free_in_slices, value)
    else:
        value.clear()


def free_in_slices(zset: ZSet) -> None:
    """Runs on a worker thread: dismantle `zset` free_slice nodes at a time.

    Between slices, time.sleep(0) releases the GIL, so an event loop that
    is waiting for it gets it now instead of at the next forced switch (up
    to sys.getswitchinterval(), 5 ms, later).
    """
    if free_slice == 0:
        # The naive way, kept to be measured: unlink everything, then drop
        # it with one `del`. That del frees every node in a single C call
        # that holds the GIL throughout: the event loop waits as long as if
        # it had freed the set itself.
        nodes = list(zset.dismantle())
        del nodes
        return
    for freed, _ in enumerate(zset.dismantle(), 1):
        if freed % free_slice == 0:
            time.sleep(0)


def free_keyspace_in_slices(old_keyspace: HMap, old_expires: HMap, old_heap: Heap) -> None:
    """Runs on a worker thread: free a flushed keyspace and its TTLs, slice by slice."""
    nodes = [*old_keyspace, *old_expires]  # a Python loop: the GIL changes hands as it goes
    old_keyspace.clear()
    old_expires.clear()
    old_heap.clear()
    while nodes:
        for node in nodes[-DEFAULT_FREE_SLICE:]:
            if type(node) is Entry and isinstance(node.value, ZSet):
                free_in_slices(node.value)
        del nodes[-DEFAULT_FREE_SLICE:]  # the last references to these nodes
        time.sleep(0)


def set_deadline(entry: Entry, deadline: int | None) -> None:
    """Give `entry` a TTL ending at `deadline` (Unix ms), or none at all."""
    expiry = expires.lookup(entry.key)
    if deadline is None:
        if expiry is not None:
            expires.pop(entry.key)
            expiry_heap.remove(expiry)
    elif expiry is not None:
        expiry_heap.update(expiry, deadline)
    else:
        expiry = Expiry(entry.key, deadline)
        expires.insert(expiry)
        expiry_heap.push(expiry)


def deadline_of(key: bytes) -> int | None:
    """When `key` expires (Unix ms), or None if it has no TTL."""
    expiry = expires.lookup(key)
    return None if expiry is None else expiry.deadline


def expire_keys() -> None:
    """Delete keys whose deadline has passed, MAX_EXPIRE_WORK at most (active expiration)."""
    now = now_ms()
    for _ in range(MAX_EXPIRE_WORK):
        expiry = expiry_heap.peek()
        if expiry is None or expiry.deadline > now:
            return
        delete_entry(keyspace.lookup(expiry.key))

# --- commands ------------------------------------------------------------------
# A command takes its arguments (the name excluded) and appends its reply to
# `out`, the connection's output buffer.

Command = Callable[[list[bytes], ReplyBuffer], None]


def ping(args: list[bytes], out: ReplyBuffer) -> None:
    if len(args) > 1:  # Redis checks PING's upper bound itself, as here
        out.error(wrong_arity_message(b"ping"))
    elif args:
        out.bulk(args[0])
    else:
        out.simple("PONG")


def echo(args: list[bytes], out: ReplyBuffer) -> None:
    out.bulk(args[0])


def get(args: list[bytes], out: ReplyBuffer) -> None:
    entry = lookup_live(args[0])
    if entry is None:
        out.null()
    elif type(entry.value) is not bytes:
        out.error(WRONGTYPE)
    else:
        out.bulk(entry.value)


def set_(args: list[bytes], out: ReplyBuffer) -> None:
    """SET key value [NX | XX] [GET] [EX s | PX ms | EXAT unix-s | PXAT unix-ms | KEEPTTL]"""
    key, value = args[0], args[1]
    if len(args) == 2:
        # A plain SET, by far the most frequent write: skip the option
        # parsing below, which would find nothing. The new value replaces
        # the old one and drops its TTL, expired or not, so a plain lookup
        # does: lookup_live would look the TTL up twice.
        entry = keyspace.lookup(key)
        if entry is None:
            keyspace.insert(Entry(key, value))
        else:
            if type(entry.value) is not bytes:  # discard() frees sets only: no call for a string
                discard(entry.value)
            entry.value = value
            if expires:  # a lookup saved when no key has a TTL, as in a cache without them
                set_deadline(entry, None)
        out.simple("OK")
        return
    flags: set[bytes] = set()
    expiry: tuple[bytes, bytes] | None = None  # (unit option, its argument)
    position = 2
    while position < len(args):
        option = args[position].lower()
        has_argument = position + 1 < len(args)
        if option == b"nx" and b"xx" not in flags:
            flags.add(option)
        elif option == b"xx" and b"nx" not in flags:
            flags.add(option)
        elif option == b"get":
            flags.add(option)
        elif option == b"keepttl" and expiry is None:
            flags.add(option)
        elif (
            option in (b"ex", b"px", b"exat", b"pxat")
            and (expiry is None or expiry[0] == option)  # Redis lets a repeated unit override itself
            and b"keepttl" not in flags
            and has_argument
        ):
            expiry = (option, args[position + 1])
            position += 1
        else:
            out.error("ERR syntax error")
            return
        position += 1
    deadline = None
    if expiry is not None:
        deadline = parse_deadline(*expiry, out)
        if deadline is None:
            return
    entry = lookup_live(key)
    if b"get" in flags:  # reply with the old value, before anything else happens
        if entry is None:
            out.null()
        elif type(entry.value) is not bytes:
            out.error(WRONGTYPE)
            return
        else:
            out.bulk(entry.value)
    if (b"nx" in flags and entry is not None) or (b"xx" in flags and entry is None):
        if b"get" not in flags:
            out.null()
        return
    if entry is None:
        entry = Entry(key, value)
        keyspace.insert(entry)
    else:
        discard(entry.value)
        entry.value = value
    if b"keepttl" not in flags:
        set_deadline(entry, deadline)
    if b"get" not in flags:
        out.simple("OK")


def parse_deadline(unit: bytes, argument: bytes, out: ReplyBuffer, command: str = "set") -> int | None:
    """SET's EX/PX/EXAT/PXAT argument as a Unix time in ms, or None after
    replying an error (chapter 17's SETEX and GETEX name themselves in it)."""
    amount = parse_integer(argument)
    if amount is None:
        out.error(NOT_AN_INTEGER)
        return None
    if amount <= 0 or (unit in (b"ex", b"exat") and amount > LLONG_MAX // 1000):
        out.error(f"ERR invalid expire time in '{command}' command")
        return None
    milliseconds = amount * 1000 if unit in (b"ex", b"exat") else amount
    if unit in (b"ex", b"px"):
        milliseconds += now_ms()
    if milliseconds > LLONG_MAX:  # Redis's 64-bit sum would overflow
        out.error(f"ERR invalid expire time in '{command}' command")
        return None
    return milliseconds


def del_(args: list[bytes], out: ReplyBuffer) -> None:
    """DEL key...: large sorted sets are freed by the thread pool, as in the book."""
    delete_keys(args, out, background=False)


def unlink(args: list[bytes], out: ReplyBuffer) -> None:
    """UNLINK key...: DEL, with every sorted set freed in the background, as in Redis."""
    delete_keys(args, out, background=True)


def delete_keys(keys: list[bytes], out: ReplyBuffer, background: bool) -> None:
    removed = 0
    for key in keys:
        entry = lookup_live(key)
        if entry is not None:
            delete_entry(entry, background)
            removed += 1
    out.integer(removed)


def exists(args: list[bytes], out: ReplyBuffer) -> None:
    """How many of the keys exist (a key named twice counts twice, as in Redis)."""
    out.integer(sum(1 for key in args if lookup_live(key) is not None))


def type_(args: list[bytes], out: ReplyBuffer) -> None:
    entry = lookup_live(args[0])
    if entry is None:
        out.simple("none")
    else:
        out.simple("zset" if isinstance(entry.value, ZSet) else "string")


def keys(args: list[bytes], out: ReplyBuffer) -> None:
    """KEYS pattern: every key matching a Redis glob pattern (O(n): a tool
    for learning and debugging, not for production, as Redis warns)."""
    now = now_ms()
    names = [entry.key for entry in keyspace if (deadline := deadline_of(entry.key)) is None or deadline > now]
    # The longest key bounds what compiling the pattern may cost (common/glob.py).
    matches = compile_glob(args[0], max(map(len, names), default=0))
    out.bulk_array([name for name in names if matches(name)])


def dbsize(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(len(keyspace))


def flushdb(args: list[bytes], out: ReplyBuffer) -> None:
    """FLUSHDB / FLUSHALL [ASYNC | SYNC]: delete every key (we have one database).

    ASYNC swaps in an empty keyspace at once and leaves the old one to a worker.
    """
    global keyspace, expires, expiry_heap
    mode = b"sync" if not args else args[0].lower() if len(args) == 1 else b""
    if mode not in (b"sync", b"async"):
        out.error("ERR syntax error")
        return
    if mode == b"async" and worker_pool is not None:
        worker_pool.submit(free_keyspace_in_slices, keyspace, expires, expiry_heap)
        keyspace, expires, expiry_heap = HMap(), HMap(), Heap()
    else:
        for entry in keyspace:
            discard(entry.value)
        keyspace.clear()
        expires.clear()
        expiry_heap.clear()
    out.simple("OK")


# --- TTL commands ------------------------------------------------------------------

LLONG_MAX = 2**63 - 1


def expire(args: list[bytes], out: ReplyBuffer) -> None:
    """EXPIRE key seconds [NX | XX | GT | LT]"""
    expire_generic(args, out, b"expire", unit_ms=1000, relative=True)


def pexpire(args: list[bytes], out: ReplyBuffer) -> None:
    expire_generic(args, out, b"pexpire", unit_ms=1, relative=True)


def expireat(args: list[bytes], out: ReplyBuffer) -> None:
    expire_generic(args, out, b"expireat", unit_ms=1000, relative=False)


def pexpireat(args: list[bytes], out: ReplyBuffer) -> None:
    expire_generic(args, out, b"pexpireat", unit_ms=1, relative=False)


def expire_generic(args: list[bytes], out: ReplyBuffer, name: bytes, unit_ms: int, relative: bool) -> None:
    """Set a key's deadline; a deadline already past deletes the key (and still replies 1)."""
    flags = set()
    for option in args[2:]:
        if option.lower() not in (b"nx", b"xx", b"gt", b"lt"):
            out.error(f"ERR Unsupported option {option.decode(errors='surrogateescape')}")
            return
        flags.add(option.lower())
    if b"nx" in flags and flags & {b"xx", b"gt", b"lt"}:
        out.error("ERR NX and XX, GT or LT options at the same time are not compatible")
        return
    if {b"gt", b"lt"} <= flags:
        out.error("ERR GT and LT options at the same time are not compatible")
        return
    amount = parse_integer(args[1])
    if amount is None:
        out.error(NOT_AN_INTEGER)
        return
    # Negative times are allowed (they delete the key); only overflow is an error.
    deadline = amount * unit_ms + (now_ms() if relative else 0)
    if not -LLONG_MAX - 1 <= amount * unit_ms <= LLONG_MAX or deadline > LLONG_MAX:
        out.error(f"ERR invalid expire time in '{name.decode()}' command")
        return
    entry = lookup_live(args[0])
    if entry is None:
        out.integer(0)
        return
    current = deadline_of(entry.key)  # None: no TTL, i.e. infinite
    if (
        (b"nx" in flags and current is not None)
        or (b"xx" in flags and current is None)
        or (b"gt" in flags and (current is None or deadline <= current))
        or (b"lt" in flags and current is not None and deadline >= current)
    ):
        out.integer(0)
        return
    if deadline <= now_ms():
        delete_entry(entry)
    else:
        set_deadline(entry, deadline)
    out.integer(1)


def ttl(args: list[bytes], out: ReplyBuffer) -> None:
    """Seconds left (rounded), -1 for a key without TTL, -2 for no key."""
    remaining = remaining_ms(args[0])
    out.integer(remaining if remaining < 0 else (remaining + 500) // 1000)


def pttl(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(remaining_ms(args[0]))


def remaining_ms(key: bytes) -> int:
    entry = lookup_live(key)
    if entry is None:
        return -2
    deadline = deadline_of(key)
    return -1 if deadline is None else max(deadline - now_ms(), 0)


def expiretime(args: list[bytes], out: ReplyBuffer) -> None:
    """The deadline as a Unix time in seconds, -1 without TTL, -2 for no key."""
    deadline = deadline_ms(args[0])
    out.integer(deadline if deadline < 0 else deadline // 1000)


def pexpiretime(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(deadline_ms(args[0]))


def deadline_ms(key: bytes) -> int:
    entry = lookup_live(key)
    if entry is None:
        return -2
    deadline = deadline_of(key)
    return -1 if deadline is None else deadline


def persist(args: list[bytes], out: ReplyBuffer) -> None:
    """Remove a key's TTL: 1 if it had one, else 0."""
    entry = lookup_live(args[0])
    if entry is None or deadline_of(entry.key) is None:
        out.integer(0)
        return
    set_deadline(entry, None)
    out.integer(1)


# --- sorted set commands -----------------------------------------------------------

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_A_FLOAT = "ERR value is not a valid float"
NOT_AN_INTEGER = "ERR value is not an integer or out of range"
BOUND_NOT_A_FLOAT = "ERR min or max is not a float"

# What C's strtod reads as a decimal number, as Redis parses scores.
FLOAT_SYNTAX = re.compile(rb"[+-]?(?:inf(?:inity)?|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)", re.IGNORECASE)


def parse_double(data: bytes) -> float | None:
    """A score as Redis reads one: a whole decimal number or inf, not NaN,
    and not so large or small that it overflows to inf or underflows to 0."""
    if not FLOAT_SYNTAX.fullmatch(data):
        return None
    value = float(data)
    mantissa = data.lower().partition(b"e")[0]
    if math.isinf(value) and b"inf" not in mantissa:
        return None  # overflow
    if value == 0.0 and any(digit in b"123456789" for digit in mantissa):
        return None  # underflow
    # Adding +0.0 turns -0 into 0: Redis's compact encoding of small sorted
    # sets keeps scores as text that reads back as 0.
    return value + 0.0


def parse_score_bound(data: bytes) -> tuple[float, bool] | None:
    """A range bound of ZRANGE BYSCORE or ZCOUNT: "1.5", "(1.5" (exclusive),
    "-inf", "+inf". Redis reads these more loosely than scores (leading
    spaces, overflow and an empty string pass); we accept what it accepts."""
    exclusive = data.startswith(b"(")
    text = data[1:] if exclusive else data
    if not text:
        return 0.0, exclusive  # strtod("") reads nothing, which Redis accepts as 0
    text = text.lstrip(b" \t\n\v\f\r")
    if not FLOAT_SYNTAX.fullmatch(text):
        return None
    return float(text), exclusive


def lookup_zset(key: bytes, out: ReplyBuffer) -> ZSet | None | bool:
    """The sorted set at `key`; None if there is no key; False (after
    replying WRONGTYPE) if the key holds something else."""
    entry = lookup_live(key)
    if entry is None:
        return None
    if not isinstance(entry.value, ZSet):
        out.error(WRONGTYPE)
        return False
    return entry.value


def zadd(args: list[bytes], out: ReplyBuffer) -> None:
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]"""
    zadd_generic(args, out, incr=False)


def zincrby(args: list[bytes], out: ReplyBuffer) -> None:
    """ZINCRBY key increment member: ZADD key INCR increment member."""
    zadd_generic(args, out, incr=True)


def zadd_generic(args: list[bytes], out: ReplyBuffer, incr: bool) -> None:
    key = args[0]
    flags: set[bytes] = set()
    position = 1
    if not incr:  # ZINCRBY takes no options
        while position < len(args) and args[position].lower() in (b"nx", b"xx", b"gt", b"lt", b"ch", b"incr"):
            flags.add(args[position].lower())
            position += 1
        incr = b"incr" in flags
    pairs = args[position:]
    if not pairs or len(pairs) % 2:
        out.error("ERR syntax error")
        return
    nx, xx, gt, lt = (flag in flags for flag in (b"nx", b"xx", b"gt", b"lt"))
    if nx and xx:
        out.error("ERR XX and NX options at the same time are not compatible")
        return
    if (gt and nx) or (lt and nx) or (gt and lt):
        out.error("ERR GT, LT, and/or NX options at the same time are not compatible")
        return
    if incr and len(pairs) > 2:
        out.error("ERR INCR option supports a single increment-element pair")
        return
    scores = [parse_double(score) for score in pairs[0::2]]
    if None in scores:  # checked before anything changes, as Redis does
        out.error(NOT_A_FLOAT)
        return
    zset = lookup_zset(key, out)
    if zset is False:
        return
    if zset is None and not xx:
        zset = SortedSet()
        keyspace.insert(Entry(key, zset))
    added = changed = 0
    processed = False
    score = 0.0
    pending = zip(scores, pairs[1::2]) if zset is not None else []  # no key and XX: nothing to do
    for score, member in pending:
        node = zset.lookup(member)
        if node is None:
            if xx:
                continue
            zset.add(member, score)
            added += 1
            processed = True
            continue
        if nx:
            continue
        if incr:
            score += node.score
            if math.isnan(score):  # inf + -inf
                out.error("ERR resulting score is not a number (NaN)")
                return
        if (lt and score >= node.score) or (gt and score <= node.score):
            continue
        processed = True
        if score != node.score:
            zset.update(node, score)
            changed += 1
    if incr:
        if processed:
            out.double(score)
        else:
            out.null()
    else:
        out.integer(added + changed if b"ch" in flags else added)


def zrem(args: list[bytes], out: ReplyBuffer) -> None:
    zset = lookup_zset(args[0], out)
    if zset is False:
        return
    if zset is None:
        out.integer(0)
        return
    removed = 0
    for member in args[1:]:
        node = zset.lookup(member)
        if node is not None:
            zset.delete(node)
            removed += 1
    if not zset:
        delete_entry(lookup_live(args[0]))  # an empty sorted set is no key at all, as in Redis
    out.integer(removed)


def zscore(args: list[bytes], out: ReplyBuffer) -> None:
    zset = lookup_zset(args[0], out)
    if zset is False:
        return
    node = zset.lookup(args[1]) if zset is not None else None
    if node is None:
        out.null()
    else:
        out.double(node.score)


def zmscore(args: list[bytes], out: ReplyBuffer) -> None:
    zset = lookup_zset(args[0], out)
    if zset is False:
        return
    out.array(len(args) - 1)
    for member in args[1:]:
        node = zset.lookup(member) if zset is not None else None
        if node is None:
            out.null()
        else:
            out.double(node.score)


def zcard(args: list[bytes], out: ReplyBuffer) -> None:
    zset = lookup_zset(args[0], out)
    if zset is not False:
        out.integer(len(zset) if zset is not None else 0)


def zrank(args: list[bytes], out: ReplyBuffer) -> None:
    zrank_generic(args, out, reverse=False)


def zrevrank(args: list[bytes], out: ReplyBuffer) -> None:
    zrank_generic(args, out, reverse=True)


def zrank_generic(args: list[bytes], out: ReplyBuffer, reverse: bool) -> None:
    zset = lookup_zset(args[0], out)
    if zset is False:
        return
    node = zset.lookup(args[1]) if zset is not None else None
    if node is None:
        out.null()
        return
    rank = zset.rank(node)
    out.integer(len(zset) - 1 - rank if reverse else rank)


def zcount(args: list[bytes], out: ReplyBuffer) -> None:
    """ZCOUNT key min max, in O(log n): the difference of two ranks."""
    low, high = parse_score_bound(args[1]), parse_score_bound(args[2])
    if low is None or high is None:
        out.error(BOUND_NOT_A_FLOAT)
        return
    zset = lookup_zset(args[0], out)
    if zset is False:
        return
    first, last = score_range_ends(zset, low, high) if zset is not None else (None, None)
    out.integer(0 if first is None else zset.rank(last) - zset.rank(first) + 1)


def score_range_ends(zset: ZSet, low: tuple[float, bool], high: tuple[float, bool]) -> tuple[ZNode | None, ZNode | None]:
    """The first and last nodes with scores between the bounds, or (None, None)."""
    first = zset.first_in_range(*low)
    last = zset.last_in_range(*high)
    if first is None or last is None or zset.rank(first) > zset.rank(last):
        return None, None
    return first, last


def zrange(args: list[bytes], out: ReplyBuffer) -> None:
    """ZRANGE key start stop [BYSCORE] [REV] [LIMIT offset count] [WITHSCORES]"""
    zrange_generic(args, out, by_score=None, reverse=None)


def zrangebyscore(args: list[bytes], out: ReplyBuffer) -> None:
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]"""
    zrange_generic(args, out, by_score=True, reverse=False)


def zrevrangebyscore(args: list[bytes], out: ReplyBuffer) -> None:
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]"""
    zrange_generic(args, out, by_score=True, reverse=True)


def zrevrange(args: list[bytes], out: ReplyBuffer) -> None:
    """ZREVRANGE key start stop [WITHSCORES]"""
    zrange_generic(args, out, by_score=False, reverse=True)


def zrange_generic(args: list[bytes], out: ReplyBuffer, by_score: bool | None, reverse: bool | None) -> None:
    """Every ZRANGE form. `by_score` and `reverse` are fixed by the legacy
    commands, or None where ZRANGE's options choose them."""
    withscores = False
    offset, limit = 0, -1
    position = 3
    while position < len(args):
        option = args[position].lower()
        if option == b"withscores":
            withscores = True
        elif option == b"limit" and len(args) - position > 2:
            offset, limit = parse_integer(args[position + 1]), parse_integer(args[position + 2])
            if offset is None or limit is None:
                out.error(NOT_AN_INTEGER)
                return
            position += 2
        elif option == b"rev" and reverse is None:
            reverse = True
        elif option == b"byscore" and by_score is None:
            by_score = True
        else:  # BYLEX, for lexicographic ranges, is not implemented here
            out.error("ERR syntax error")
            return
        position += 1
    # Redis checks for LIMIT by its count, so "LIMIT 0 -1" passes anywhere.
    if limit != -1 and not by_score:
        out.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        return
    if by_score:
        low, high = args[2] if reverse else args[1], args[1] if reverse else args[2]
        bounds = parse_score_bound(low), parse_score_bound(high)
        if None in bounds:
            out.error(BOUND_NOT_A_FLOAT)
            return
    else:
        start, stop = parse_integer(args[1]), parse_integer(args[2])
        if start is None or stop is None:
            out.error(NOT_AN_INTEGER)
            return
    zset = lookup_zset(args[0], out)
    if zset is False:
        return
    if zset is None:
        nodes = []
    elif by_score:
        nodes = nodes_by_score(zset, *bounds, bool(reverse), offset, limit)
    else:
        nodes = nodes_by_rank(zset, start, stop, bool(reverse))
    write_members(out, nodes, withscores)


def nodes_by_rank(zset: ZSet, start: int, stop: int, reverse: bool) -> list[ZNode]:
    """Members from rank start to stop inclusive (negative: from the end), in O(log n + k)."""
    size = len(zset)
    start = max(start + size if start < 0 else start, 0)
    stop = min(stop + size if stop < 0 else stop, size - 1)
    if start > stop:
        return []
    count = stop - start + 1
    if reverse:
        return list(zset.walk(zset.at(size - 1 - start), count, -1))
    return list(zset.walk(zset.at(start), count, 1))


def nodes_by_score(
    zset: ZSet, low: tuple[float, bool], high: tuple[float, bool], reverse: bool, offset: int, limit: int
) -> list[ZNode]:
    """Members with scores between the bounds, skipping `offset`, at most
    `limit` (negative: no limit)."""
    return nodes_between(zset, *score_range_ends(zset, low, high), reverse, offset, limit)


def nodes_between(
    zset: ZSet, first: ZNode | None, last: ZNode | None, reverse: bool, offset: int, limit: int
) -> list[ZNode]:
    """The nodes from `first` to `last` (None: no range), skipping `offset`,
    at most `limit`. O(log n + k): the offset is skipped by rank arithmetic
    and one O(log n) seek, not member by member. (Chapter 17's
    lexicographic ranges use it too.)"""
    if first is None or last is None or offset < 0:
        return []
    available = zset.rank(last) - zset.rank(first) + 1 - offset
    count = available if limit < 0 else min(limit, available)
    if count <= 0:
        return []
    start = zset.rank(last) - offset if reverse else zset.rank(first) + offset
    return list(zset.walk(zset.at(start), count, -1 if reverse else 1))


def write_members(out: ReplyBuffer, nodes: list[ZNode], withscores: bool) -> None:
    """Members, with their scores if asked: RESP2 alternates member and
    score in one array; RESP3 gives each pair its own array, as Redis."""
    if not withscores:
        out.array(len(nodes))
        for node in nodes:
            out.bulk(node.key)
    elif out.protocol == 3:
        out.array(len(nodes))
        for node in nodes:
            out.array(2)
            out.bulk(node.key)
            out.double(node.score)
    else:
        out.array(2 * len(nodes))
        for node in nodes:
            out.bulk(node.key)
            out.double(node.score)


def zquery(args: list[bytes], out: ReplyBuffer) -> None:
    """ZQUERY key score member offset limit: the book's own range query.

    From the first member at or after (score, member), skip `offset`
    members (which may be negative, to step back) and return up to `limit`
    of them with their scores. Redis's ZRANGE key min +inf BYSCORE LIMIT
    offset count does the same from a score alone.
    """
    score = parse_double(args[1])
    offset, limit = parse_integer(args[3]), parse_integer(args[4])
    if score is None:
        out.error(NOT_A_FLOAT)
        return
    if offset is None or limit is None:
        out.error(NOT_AN_INTEGER)
        return
    zset = lookup_zset(args[0], out)
    if zset is False:
        return
    node = zset.seek_ge(score, args[2]) if zset is not None else None
    if node is not None and offset:
        node = zset.offset(node, offset)
    write_members(out, list(zset.walk(node, limit)) if node is not None else [], withscores=True)



# Dispatch, arity checks, error texts, COMMAND, CLIENT and QUIT: common/commands.py.
COMMANDS = CommandTable(
    {
        b"ping": CommandSpec(ping, -1, ("fast",)),
        b"echo": CommandSpec(echo, 2, ("fast",)),
        b"get": CommandSpec(get, 2, ("readonly", "fast"), 1, 1, 1),
        b"set": CommandSpec(set_, -3, ("write", "denyoom"), 1, 1, 1),
        b"expire": CommandSpec(expire, -3, ("write", "fast"), 1, 1, 1),
        b"pexpire": CommandSpec(pexpire, -3, ("write", "fast"), 1, 1, 1),
        b"expireat": CommandSpec(expireat, -3, ("write", "fast"), 1, 1, 1),
        b"pexpireat": CommandSpec(pexpireat, -3, ("write", "fast"), 1, 1, 1),
        b"ttl": CommandSpec(ttl, 2, ("readonly", "fast"), 1, 1, 1),
        b"pttl": CommandSpec(pttl, 2, ("readonly", "fast"), 1, 1, 1),
        b"expiretime": CommandSpec(expiretime, 2, ("readonly", "fast"), 1, 1, 1),
        b"pexpiretime": CommandSpec(pexpiretime, 2, ("readonly", "fast"), 1, 1, 1),
        b"persist": CommandSpec(persist, 2, ("write", "fast"), 1, 1, 1),
        b"del": CommandSpec(del_, -2, ("write",), 1, -1, 1),
        b"unlink": CommandSpec(unlink, -2, ("write", "fast"), 1, -1, 1),
        b"exists": CommandSpec(exists, -2, ("readonly", "fast"), 1, -1, 1),
        b"type": CommandSpec(type_, 2, ("readonly", "fast"), 1, 1, 1),
        b"keys": CommandSpec(keys, 2, ("readonly",)),
        b"dbsize": CommandSpec(dbsize, 1, ("readonly", "fast")),
        b"flushdb": CommandSpec(flushdb, -1, ("write",)),
        b"flushall": CommandSpec(flushdb, -1, ("write",)),
        b"hello": CommandSpec(hello, -1, ("noscript", "loading", "stale", "fast")),
        b"zadd": CommandSpec(zadd, -4, ("write", "denyoom", "fast"), 1, 1, 1),
        b"zincrby": CommandSpec(zincrby, 4, ("write", "denyoom", "fast"), 1, 1, 1),
        b"zrem": CommandSpec(zrem, -3, ("write", "fast"), 1, 1, 1),
        b"zscore": CommandSpec(zscore, 3, ("readonly", "fast"), 1, 1, 1),
        b"zmscore": CommandSpec(zmscore, -3, ("readonly", "fast"), 1, 1, 1),
        b"zcard": CommandSpec(zcard, 2, ("readonly", "fast"), 1, 1, 1),
        b"zrank": CommandSpec(zrank, 3, ("readonly", "fast"), 1, 1, 1),
        b"zrevrank": CommandSpec(zrevrank, 3, ("readonly", "fast"), 1, 1, 1),
        b"zcount": CommandSpec(zcount, 4, ("readonly", "fast"), 1, 1, 1),
        b"zrange": CommandSpec(zrange, -4, ("readonly",), 1, 1, 1),
        b"zrangebyscore": CommandSpec(zrangebyscore, -4, ("readonly",), 1, 1, 1),
        b"zrevrangebyscore": CommandSpec(zrevrangebyscore, -4, ("readonly",), 1, 1, 1),
        b"zrevrange": CommandSpec(zrevrange, -4, ("readonly",), 1, 1, 1),
        b"zquery": CommandSpec(zquery, 6, ("readonly",), 1, 1, 1),  # the book's, see zquery()
    }
)
# INFO, CONFIG and SELECT: common/admin.py.
ADMIN = ServerAdmin(COMMANDS, keys=lambda: len(keyspace), expires=lambda: len(expires))


# --- connections -------------------------------------------------------------


class Connection(DListNode):
    """One client's socket and the state kept for it between events.

    It is also a node of the idle list (its `prev` and `next` links).
    """

    __slots__ = ("sock", "parser", "outgoing", "closing", "input_closed", "polled_events", "last_active")

    def __init__(self, sock: socket.socket, client_id: int) -> None:
        super().__init__()
        self.last_active = time.monotonic()
        self.sock = sock
        self.parser = RequestParser()
        self.outgoing = ReplyBuffer(client_id)  # replies not yet sent, in the client's protocol
        self.closing = False  # close once the outgoing replies are sent
        self.input_closed = False  # the client sends no more: close once all it sent is answered
        self.polled_events = select.POLLIN  # what the poller waits for now

    def wanted_events(self) -> int:
        """What to poll for: output while replies wait; input while the
        client may send more and its requests are not held back by
        MAX_OUTPUT. Not reading a client that does not read its replies
        leaves its requests in the kernel's buffers, and TCP's flow control
        then stops the sender, instead of our memory growing without end."""
        events = select.POLLOUT if self.outgoing else 0
        if not (self.closing or self.input_closed) and len(self.outgoing) < MAX_OUTPUT:
            events |= select.POLLIN
        return events


# --- idle timers ---------------------------------------------------------------------

# Every connection, least recently active first.
idle_connections = DList()
idle_timeout = DEFAULT_IDLE_TIMEOUT


def touch(conn: Connection) -> None:
    """Note activity on `conn`: its idle timer starts again, at the back of the list."""
    conn.last_active = time.monotonic()
    idle_connections.move_to_back(conn)


def set_idle_timeout(seconds: int) -> None:
    """CONFIG SET timeout: Redis's name for the idle timeout (0: never)."""
    global idle_timeout
    idle_timeout = seconds


def next_timer_ms() -> int | None:
    """How long poll() may sleep: until the oldest connection's idle
    timeout or the nearest key expiry, or for ever if there is neither."""
    waits = []
    oldest = idle_connections.front()
    if oldest is not None and idle_timeout:
        remaining = oldest.last_active + idle_timeout - time.monotonic()
        waits.append(int(remaining * 1000) + 1)  # round up: waking early would just loop
    soonest = expiry_heap.peek()
    if soonest is not None:
        waits.append(soonest.deadline - now_ms() + 1)
    return min(MAX_SLEEP_MS, max(0, min(waits))) if waits else None


def close_idle_connections(poller: select.poll, clients: dict[int, Connection]) -> None:
    """Close every connection idle for idle_timeout or longer: all at the front."""
    if not idle_timeout:
        return
    now = time.monotonic()
    while (oldest := idle_connections.front()) is not None and oldest.last_active + idle_timeout <= now:
        log.debug("closing a connection idle for %.1fs", now - oldest.last_active)
        abandon(oldest)
        close_client(oldest, poller, clients)


# --- connection events ------------------------------------------------------------------


def handle_readable(conn: Connection) -> None:
    try:
        data = conn.sock.recv(RECV_SIZE)
    except BlockingIOError:
        return  # spurious wakeup: nothing to read after all
    except OSError:  # e.g. reset by the client: nobody left to answer
        abandon(conn)
        return
    if not data:
        # The client will send no more, but may still read (a half-close).
        # Every request it sent is executed and answered before we close,
        # those held back by MAX_OUTPUT too, as its output drains.
        conn.input_closed = True
        return
    touch(conn)
    conn.parser.feed(data)
    if conn.parser.pending_bytes() > conn.parser.max_query_buffer:
        # Redis's client-query-buffer-limit: this client's unexecuted input
        # would grow without bound. Redis closes it without a reply.
        log.warning("closing a client past the query buffer limit (%d bytes)", conn.parser.max_query_buffer)
        conn.closing = True
        conn.outgoing.clear()
        return
    execute_requests(conn)


# The connection whose requests are being executed: Redis's server.current_client,
# which a command that blocks its client (chapter 17's BZPOPMIN) needs to know.
current_client: Connection | None = None


def execute_requests(conn: Connection) -> None:
    """Answer every complete request buffered, while the output is not too
    big and no command has blocked the client (chapter 17)."""
    global current_client
    current_client = conn
    out = conn.outgoing
    try:
        while len(out) < MAX_OUTPUT and not out.blocked and (request := conn.parser.next_request()) is not None:
            if COMMANDS.execute(request, out):  # QUIT: reply, close, run nothing after it
                conn.closing = True
                break
    except ProtocolError as error:
        out.error(f"ERR {error}")
        conn.closing = True
    except Exception:
        # A bug in a command must cost this one connection, not the server.
        log.exception("internal error while executing a request; closing the connection")
        out.error("ERR internal error")
        conn.closing = True


def abandon(conn: Connection) -> None:
    """The client is gone: nobody will read replies any more. Requests it
    sent that MAX_OUTPUT held back are executed all the same, their
    replies dropped (Redis, which executes requests as they arrive, would
    have run them already); then the connection closes. Not after a
    protocol error or QUIT: what follows those is never executed."""
    conn.outgoing.clear()
    while not conn.closing and conn.parser.buffered():
        execute_requests(conn)
        if len(conn.outgoing) < MAX_OUTPUT:
            break  # no complete request left
        conn.outgoing.clear()
    conn.closing = True
    conn.outgoing.clear()


def handle_writable(conn: Connection) -> None:
    try:
        sent = conn.sock.send(conn.outgoing)
    except BlockingIOError:
        return  # the kernel's buffer is full: poll() will tell us when not
    except OSError:
        abandon(conn)
        return
    # Deleting from the front of a bytearray moves its start pointer in
    # CPython; the unsent rest is not copied.
    del conn.outgoing[:sent]
    if len(conn.outgoing) < MAX_OUTPUT and not conn.closing and conn.parser.buffered():
        # Requests held back by MAX_OUTPUT can run now.
        execute_requests(conn)


# --- the event loop --------------------------------------------------------------


# Every connection gets the next number, as Redis's client ids.
client_ids = itertools.count(1)


def accept_clients(acceptor: Acceptor, poller: select.poll, clients: dict[int, Connection]) -> None:
    """Accept every connection waiting in the listen queue; past
    maxclients the acceptor refuses them with Redis's error."""
    while (accepted := acceptor.accept(len(clients))) is not None:
        sock, address = accepted
        sock.setblocking(False)
        # Replies are written whole; don't let Nagle's algorithm hold them back.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock, next(client_ids))
        idle_connections.push_back(conn)
        clients[sock.fileno()] = conn
        poller.register(sock, conn.polled_events)
        log.debug("connection from %s:%d", *address[:2])


def close_client(conn: Connection, poller: select.poll, clients: dict[int, Connection]) -> None:
    idle_connections.detach(conn)
    fd = conn.sock.fileno()
    poller.unregister(fd)
    del clients[fd]
    conn.sock.close()


def handle_events(conn: Connection, events: int, poller: select.poll, clients: dict[int, Connection]) -> None:
    """Serve what the poller reported for one client (chapter 15 calls this
    from epoll's loop): read and execute its requests, then send_replies."""
    # POLLHUP/POLLERR come without POLLIN on some systems; recv() then
    # reports what happened.
    if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
        handle_readable(conn)
    if events & select.POLLOUT and conn.outgoing:
        # Writable again after a full buffer: the client reads its replies,
        # so it is not idle. (Its requests touch it in handle_readable.)
        touch(conn)
    send_replies(conn, poller, clients)


def send_replies(conn: Connection, poller: select.poll, clients: dict[int, Connection]) -> None:
    """Send the replies waiting for `conn`, then close it if it is done, or
    change what it is polled for if that changed. Chapter 16 calls this
    apart from handle_readable, to write the append-only file in between."""
    if conn.outgoing:
        # Most replies fit in the socket buffer: send now instead of waiting
        # a round of poll() to learn that the socket is writable.
        handle_writable(conn)
    if (conn.closing or conn.input_closed) and not conn.outgoing:
        close_client(conn, poller, clients)
        return
    wanted = conn.wanted_events()
    if wanted != conn.polled_events:
        # Only on change: every modify() makes the next poll() rebuild its
        # array of all descriptors.
        poller.modify(conn.sock, wanted)
        conn.polled_events = wanted


def run_event_loop(acceptor: Acceptor) -> None:
    listener = acceptor.listener
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    listener_fd = listener.fileno()
    clients: dict[int, Connection] = {}
    ADMIN.serve(acceptor, clients, count_cycles=True)
    while True:
        for fd, events in poller.poll(next_timer_ms()):
            if fd == listener_fd:
                accept_clients(acceptor, poller, clients)
            else:
                handle_events(clients[fd], events, poller, clients)
        close_idle_connections(poller, clients)
        expire_keys()
        ADMIN.eventloop_cycles += 1


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="SECONDS",
        help="close connections idle this long (default: %(default)s; 0: never)",
    )  # fmt: skip
    parser.add_argument(
        "--lazy-free-threshold", type=int, default=DEFAULT_LAZY_FREE_THRESHOLD, metavar="MEMBERS",
        help="free sorted sets larger than this on a worker thread (default: %(default)s; 0: never)",
    )  # fmt: skip
    parser.add_argument(
        "--free-slice", type=int, default=DEFAULT_FREE_SLICE, metavar="NODES",
        help="nodes a worker frees before yielding the GIL (default: %(default)s; 0: all at once)",
    )  # fmt: skip


def configure(options: argparse.Namespace) -> None:
    """Apply the command line's settings (chapter 15 reuses this chapter's)."""
    global idle_timeout, lazy_free_threshold, free_slice
    idle_timeout = options.idle_timeout
    ADMIN.config.add_integer("timeout", lambda: round(idle_timeout), set_idle_timeout)
    lazy_free_threshold = options.lazy_free_threshold
    free_slice = options.free_slice


def serve_with(event_loop: Callable[[Acceptor], None], options: argparse.Namespace) -> None:
    """Listen, start the worker pool, and run `event_loop` until stopped."""
    global worker_pool
    # One worker: with the GIL, more threads would take turns, not work in parallel.
    with create_listener(options.host, options.port) as listener, ThreadPool(1, "lazy-free") as pool:
        if lazy_free_threshold > 0:
            worker_pool = pool
        ADMIN.extra_info["memory"] = [lambda: {"lazyfree_pending_objects": pool.pending()}]
        log.info("listening on %s:%d", options.host, options.port)
        acceptor = Acceptor(listener, max_clients_for_fd_limit(options.maxclients))
        serve(lambda: event_loop(acceptor))


def main() -> None:
    options = parse_options("Chapter 14: a thread pool for large deletions", add_options, client_limits=True)
    configure(options)
    serve_with(run_event_loop, options)


if __name__ == "__main__":
    main()
