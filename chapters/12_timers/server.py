"""Chapter 12: timers: closing idle connections, and a loop that sleeps.

A client that connects and goes silent holds a socket and its buffers
forever. Redis closes such clients after `timeout` seconds; so does this
server, after --idle-timeout seconds (default 300; 0 never).

Checking every connection's age on every loop iteration would be O(n). The
book keeps connections in a doubly linked list ordered by last activity
(common/dlist.py): a connection that reads or writes moves to the back, in
O(1), so the front is always the connection idle longest. The event loop
closes expired connections from the front, and gives poll() a timeout that
ends exactly when the front connection's timer fires, so an idle server
sleeps in poll() instead of waking up to check on nobody.

    make run-chapter 12 & (sleep 1; redis-cli PING)
    python chapters/12_timers/server.py --idle-timeout 5   # then watch nc get closed
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

from common.avl import avl_offset  # noqa: E402
from common.admin import ServerAdmin  # noqa: E402
from common.commands import CommandSpec, CommandTable, wrong_arity_message  # noqa: E402
from common.dlist import DList, DListNode  # noqa: E402
from common.hashtable import HMap, HNode  # noqa: E402
from common.net import Acceptor, create_listener, log, max_clients_for_fd_limit, parse_options, serve  # noqa: E402
from common.glob import compile_glob  # noqa: E402
from common.resp import ProtocolError, RequestParser, parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer, hello  # noqa: E402
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

# --- the keyspace ----------------------------------------------------------------


class Entry(HNode):
    """A key and its value: the hashtable node itself (it inherits the
    hashtable's `key` and `hnext`), so a key costs one object.
    The value is a string (bytes) or a sorted set (ZSet)."""

    __slots__ = ("value",)

    def __init__(self, key: bytes, value: bytes | ZSet) -> None:
        # The hashtable's slots are set here rather than by super().__init__():
        # one Python call less for every new key.
        self.key = key
        self.hnext = None
        self.value = value


keyspace = HMap()


def discard(value: bytes | ZSet) -> None:
    """Free a value that is being dropped. A sorted set's tree links its
    nodes in reference cycles, which reference counting cannot free: left
    alone, they would wait for Python's cyclic garbage collector, which
    frees them all at once, stalling the server at some later moment.
    Dismantling the set frees each node now."""
    if type(value) is ZSet:
        value.clear()

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
    entry = keyspace.lookup(args[0])
    if entry is None:
        out.null()
    elif type(entry.value) is not bytes:
        out.error(WRONGTYPE)
    else:
        out.bulk(entry.value)


def set_(args: list[bytes], out: ReplyBuffer) -> None:
    if len(args) != 2:  # SET's options (EX, PX, NX, ...) arrive in chapter 13
        out.error("ERR syntax error")
        return
    entry = keyspace.lookup(args[0])
    if entry is None:
        keyspace.insert(Entry(args[0], args[1]))
    else:
        discard(entry.value)
        entry.value = args[1]
    out.simple("OK")


def del_(args: list[bytes], out: ReplyBuffer) -> None:
    removed = 0
    for key in args:
        entry = keyspace.pop(key)
        if entry is not None:
            discard(entry.value)
            removed += 1
    out.integer(removed)


def exists(args: list[bytes], out: ReplyBuffer) -> None:
    """How many of the keys exist (a key named twice counts twice, as in Redis)."""
    out.integer(sum(1 for key in args if keyspace.lookup(key) is not None))


def type_(args: list[bytes], out: ReplyBuffer) -> None:
    entry = keyspace.lookup(args[0])
    if entry is None:
        out.simple("none")
    else:
        out.simple("zset" if type(entry.value) is ZSet else "string")


def keys(args: list[bytes], out: ReplyBuffer) -> None:
    """KEYS pattern: every key matching a Redis glob pattern (O(n): a tool
    for learning and debugging, not for production, as Redis warns)."""
    names = [entry.key for entry in keyspace]
    # The longest key bounds what compiling the pattern may cost (common/glob.py).
    matches = compile_glob(args[0], max(map(len, names), default=0))
    out.bulk_array([name for name in names if matches(name)])


def dbsize(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(len(keyspace))


def flushdb(args: list[bytes], out: ReplyBuffer) -> None:
    """FLUSHDB / FLUSHALL [SYNC]: delete every key (we have one database)."""
    if args and (len(args) > 1 or args[0].lower() != b"sync"):
        # ASYNC, which frees memory in the background, arrives with threads in chapter 14.
        out.error("ERR syntax error")
        return
    for entry in keyspace:
        discard(entry.value)
    keyspace.clear()
    out.simple("OK")


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
    entry = keyspace.lookup(key)
    if entry is None:
        return None
    if type(entry.value) is not ZSet:
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
        zset = ZSet()
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
        keyspace.pop(args[0])  # an empty sorted set is no key at all, as in Redis
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
    `limit` (negative: no limit). O(log n + k): the offset is skipped by
    rank arithmetic and one O(log n) seek, not member by member."""
    first, last = score_range_ends(zset, low, high)
    if first is None or offset < 0:
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
        node = avl_offset(node, offset)
    write_members(out, list(ZSet.walk(node, limit)), withscores=True)



# Dispatch, arity checks, error texts, COMMAND, CLIENT and QUIT: common/commands.py.
COMMANDS = CommandTable(
    {
        b"ping": CommandSpec(ping, -1, ("fast",)),
        b"echo": CommandSpec(echo, 2, ("fast",)),
        b"get": CommandSpec(get, 2, ("readonly", "fast"), 1, 1, 1),
        b"set": CommandSpec(set_, -3, ("write", "denyoom"), 1, 1, 1),
        b"del": CommandSpec(del_, -2, ("write",), 1, -1, 1),
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
ADMIN = ServerAdmin(COMMANDS, keys=lambda: len(keyspace))


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
    timeout, or for ever if no timer is running."""
    oldest = idle_connections.front()
    if oldest is None or not idle_timeout:
        return None
    remaining = oldest.last_active + idle_timeout - time.monotonic()
    return min(MAX_SLEEP_MS, max(0, int(remaining * 1000) + 1))  # round up: waking early would just loop


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
    # Most replies fit in the socket buffer: send now instead of waiting a
    # round of poll() to learn that the socket is writable.
    handle_writable(conn)


def execute_requests(conn: Connection) -> None:
    """Answer every complete request buffered, while the output is not too big."""
    out = conn.outgoing
    try:
        while len(out) < MAX_OUTPUT and (request := conn.parser.next_request()) is not None:
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


def run_event_loop(acceptor: Acceptor) -> None:
    listener = acceptor.listener
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    listener_fd = listener.fileno()
    clients: dict[int, Connection] = {}
    ADMIN.serve(acceptor, clients)
    while True:
        for fd, events in poller.poll(next_timer_ms()):
            if fd == listener_fd:
                accept_clients(acceptor, poller, clients)
                continue
            conn = clients[fd]
            # POLLHUP/POLLERR come without POLLIN on some systems; recv()
            # then reports what happened.
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                handle_readable(conn)
            if events & select.POLLOUT and conn.outgoing:
                # Writable again after a full buffer: the client reads its replies,
                # so it is not idle. (Its requests touch it in handle_readable.)
                touch(conn)
                handle_writable(conn)
            if (conn.closing or conn.input_closed) and not conn.outgoing:
                close_client(conn, poller, clients)
                continue
            wanted = conn.wanted_events()
            if wanted != conn.polled_events:
                # Only on change: every modify() makes the next poll()
                # rebuild its array of all descriptors.
                poller.modify(fd, wanted)
                conn.polled_events = wanted
        close_idle_connections(poller, clients)


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="SECONDS",
        help="close connections idle this long (default: %(default)s; 0: never)",
    )  # fmt: skip


def main() -> None:
    global idle_timeout
    options = parse_options("Chapter 12: idle timers", add_options, client_limits=True)
    idle_timeout = options.idle_timeout
    ADMIN.config.add_integer("timeout", lambda: round(idle_timeout), set_idle_timeout)
    with create_listener(options.host, options.port) as listener:
        log.info("listening on %s:%d", options.host, options.port)
        acceptor = Acceptor(listener, max_clients_for_fd_limit(options.maxclients))
        serve(lambda: run_event_loop(acceptor))


if __name__ == "__main__":
    main()
