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
import select
import socket
import sys
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.admin import ServerAdmin  # noqa: E402
from common.commands import NOT_AN_INTEGER, WRONGTYPE, CommandSpec, CommandTable, wrong_arity_message  # noqa: E402
from common.dlist import DList, DListNode  # noqa: E402
from common.hashtable import HMap, HNode  # noqa: E402
from common.net import Acceptor, create_listener, log, max_clients_for_fd_limit, parse_options, serve  # noqa: E402
from common.glob import compile_glob  # noqa: E402
from common.heap import Heap  # noqa: E402
from common.resp import ProtocolError, RequestParser, parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer, hello  # noqa: E402
from common.thread_pool import ThreadPool  # noqa: E402
from common.zset import ZSet  # noqa: E402
from common.ttl_commands import LLONG_MAX, TtlCommands, now_ms  # noqa: E402
from common.zset_commands import SortedSetCommands  # noqa: E402

# Bytes read per event, as Redis (PROTO_IOBUF_LEN): every request in them
# runs before any other client is served, so a pipelining client may hold
# the loop that long (chapter 06's README measures it).
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
    The value is a string (bytes) or a collection: a sorted set (ZSet),
    or any other type with its shape (its type_name, encoding, length,
    duplicate() and dismantle()). A key's TTL is not here but in an
    Expiry of its own, if it has one.
    """

    __slots__ = ("value",)

    def __init__(self, key: bytes, value: bytes | ZSet) -> None:
        super().__init__(key)
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
        super().__init__(key)
        self.deadline = deadline
        self.heap_index = -1


keyspace = HMap()  # key -> Entry
# What makes a keyspace table (here and for FLUSHALL ASYNC's fresh one).
# A server built on this one may keep its keys in another kind of table,
# with HMap's interface and Entries as its nodes (use_keyspace_table).
new_keyspace_table: Callable[[], Any] = HMap
expires = HMap()  # key -> Expiry, for the keys that have a TTL
expiry_heap = Heap()  # those same Expiry objects, soonest deadline on top


def use_keyspace_table(make: Callable[[], Any]) -> None:
    """Keep the keys in tables `make()` builds from now on (before any key exists)."""
    global keyspace, new_keyspace_table
    assert not keyspace, "the keyspace table changes while it is empty"
    new_keyspace_table, keyspace = make, make()


# Set up by main(): the pool that frees large values, None if disabled.
worker_pool: ThreadPool | None = None
lazy_free_threshold = DEFAULT_LAZY_FREE_THRESHOLD
free_slice = DEFAULT_FREE_SLICE


# --- keyspace events ---------------------------------------------------------------
# What a command did to a key, told as it happens to whoever listens
# (Redis's notifyKeyspaceEvent): (class, event, key), the class a letter of
# Redis's notify-keyspace-events ("g" generic, "$" string, "z" sorted set,
# "x" expired, "n" new key). Nobody listens here; a server built on this
# one may publish them. With no listener, an event costs one call.
keyspace_listeners: list[Callable[[str, str, bytes], None]] = []


def notify_keyspace_event(kind: str, event: str, key: bytes) -> None:
    for listener in keyspace_listeners:
        listener(kind, event, key)


# What to do with a key found past its deadline: "delete" it (lazy
# expiration), "hide" it (it reads as missing, and is left for someone else
# to delete) or "keep" it (it reads as live). Here it is always deleted; a
# server whose keys another server owns (a replica, whose master deletes
# its keys and says so) registers its answer (Redis's expireIfNeeded); the
# first registered answers.
expired_key_rules: list[Callable[[], str]] = []


def expired_key_rule() -> str:
    return expired_key_rules[0]() if expired_key_rules else "delete"


def lookup_live(key: bytes) -> Entry | None:
    """The entry at `key`, or None if there is none or it has expired; an
    expired key is deleted on the spot (lazy expiration)."""
    entry = keyspace.lookup(key)
    if entry is not None and (expiry := expires.lookup(key)) is not None and expiry.deadline <= now_ms():
        rule = expired_key_rule()
        if rule == "delete":
            delete_expired(entry)
        if rule != "keep":
            entry = None
    running = COMMANDS.current
    if running is not None and not running.writes:  # INFO's keyspace hits and misses count reads, as Redis's
        if entry is None:
            ADMIN.traffic.keyspace_misses += 1
        else:
            ADMIN.traffic.keyspace_hits += 1
    return entry


def delete_expired(entry: Entry) -> None:
    ADMIN.traffic.expired_keys += 1
    delete_entry(entry)
    notify_keyspace_event("x", "expired", entry.key)


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
    if type(value) is bytes:
        return
    if worker_pool is not None and (background or len(value) > lazy_free_threshold):
        worker_pool.submit(free_in_slices, value)
    else:
        value.clear()


def free_in_slices(zset: ZSet, counted: int = 1) -> None:
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
        ADMIN.traffic.lazyfreed_objects += counted
        return
    for freed, _ in enumerate(zset.dismantle(), 1):
        if freed % free_slice == 0:
            time.sleep(0)
    ADMIN.traffic.lazyfreed_objects += counted  # only this thread adds to it


def free_keyspace_in_slices(old_keyspace: HMap, old_expires: HMap, old_heap: Heap) -> None:
    """Runs on a worker thread: free a flushed keyspace and its TTLs, slice by slice."""
    keys = len(old_keyspace)
    nodes = [*old_keyspace, *old_expires]  # a Python loop: the GIL changes hands as it goes
    old_keyspace.clear()
    old_expires.clear()
    old_heap.clear()
    while nodes:
        for node in nodes[-DEFAULT_FREE_SLICE:]:
            if isinstance(node, Entry) and type(node.value) is not bytes:
                free_in_slices(node.value, counted=0)
        del nodes[-DEFAULT_FREE_SLICE:]  # the last references to these nodes
        time.sleep(0)
    ADMIN.traffic.lazyfreed_objects += keys


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
    expiry = expiry_heap.peek()
    if expiry is None or expiry.deadline > now or expired_key_rule() != "delete":
        return
    started = time.perf_counter_ns()  # INFO's expire_cycle_cpu_milliseconds
    for _ in range(MAX_EXPIRE_WORK):
        expiry = expiry_heap.peek()
        if expiry is None or expiry.deadline > now:
            break
        delete_expired(keyspace.lookup(expiry.key))
    else:
        ADMIN.traffic.expire_cycles_capped += 1  # due keys are left for the next cycle
    ADMIN.traffic.expire_cycle_ns += time.perf_counter_ns() - started

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
        set_plain(key, value, out)  # the most frequent write, in fewer steps: see set_plain
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
        entry = add_entry(key, value)
    else:
        discard(entry.value)
        entry.value = value
    if b"keepttl" not in flags:
        set_deadline(entry, deadline)
    notify_keyspace_event("$", "set", key)
    if deadline is not None:
        notify_keyspace_event("g", "expire", key)
    if b"get" not in flags:
        out.simple("OK")


def set_plain(key: bytes, value: bytes, out: ReplyBuffer) -> None:
    """SET key value, with no options: what set_() does for it, faster (a
    speed path, skippable on a first reading). The new value replaces the
    old one and drops its TTL, expired or not, so a plain lookup does where
    lookup_live would look the TTL up twice; and no key with a TTL, no
    lookup in `expires` at all."""
    entry = keyspace.lookup(key)
    if entry is None:
        add_entry(key, value)
    else:
        discard(entry.value)
        entry.value = value
        if expires:
            set_deadline(entry, None)
    notify_keyspace_event("$", "set", key)
    out.simple("OK")


def parse_deadline(unit: bytes, argument: bytes, out: ReplyBuffer, command: str = "set") -> int | None:
    """SET's EX/PX/EXAT/PXAT argument as a Unix time in ms, or None after
    replying an error naming `command` (commands with a TTL of their own reuse it)."""
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
            notify_keyspace_event("g", "del", key)
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
        out.simple("string" if type(entry.value) is bytes else entry.value.type_name.decode())


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
        keyspace, expires, expiry_heap = new_keyspace_table(), HMap(), Heap()
    else:
        for entry in keyspace:
            discard(entry.value)
        keyspace.clear()
        expires.clear()
        expiry_heap.clear()
    out.simple("OK")


# --- TTL commands ------------------------------------------------------------------
# EXPIRE, TTL, PERSIST and the rest: common/ttl_commands.py, on this keyspace.

TTLS = TtlCommands(lookup=lookup_live, delete=delete_entry, deadline_of=deadline_of, set_deadline=set_deadline,
                   notify=notify_keyspace_event)


# --- sorted set commands -----------------------------------------------------------
# ZADD, ZRANGE, ZRANK, ZCOUNT, the book's ZQUERY and the rest of chapter 11's
# commands: common/zset_commands.py, on this keyspace through three functions.


def add_entry(key: bytes, value: bytes | ZSet, overwrite: bool = False) -> Entry:
    """A new key (Redis's dbAdd): every command that creates one comes here.
    `overwrite`: it replaces a key just deleted, which is not a new key."""
    entry = Entry(key, value)
    keyspace.insert(entry)
    if not overwrite:
        notify_keyspace_event("n", "new", key)
    return entry


SORTED_SETS = SortedSetCommands(lookup=lookup_live, add=add_entry, delete=delete_entry, notify=notify_keyspace_event)


# Dispatch, arity checks, error texts, COMMAND, CLIENT and QUIT: common/commands.py.
COMMANDS = CommandTable(
    {
        b"ping": CommandSpec(ping, -1, ("fast",)),
        b"echo": CommandSpec(echo, 2, ("fast",)),
        b"get": CommandSpec(get, 2, ("readonly", "fast"), 1, 1, 1),
        b"set": CommandSpec(set_, -3, ("write", "denyoom"), 1, 1, 1),
        b"del": CommandSpec(del_, -2, ("write",), 1, -1, 1),
        b"unlink": CommandSpec(unlink, -2, ("write", "fast"), 1, -1, 1),
        b"exists": CommandSpec(exists, -2, ("readonly", "fast"), 1, -1, 1),
        b"type": CommandSpec(type_, 2, ("readonly", "fast"), 1, 1, 1),
        b"keys": CommandSpec(keys, 2, ("readonly",)),
        b"dbsize": CommandSpec(dbsize, 1, ("readonly", "fast")),
        b"flushdb": CommandSpec(flushdb, -1, ("write",)),
        b"flushall": CommandSpec(flushdb, -1, ("write",)),
        b"hello": CommandSpec(hello, -1, ("noscript", "loading", "stale", "fast")),
    }
    | TTLS.specs()
    | SORTED_SETS.specs()
)
# INFO, CONFIG and SELECT: common/admin.py.
ADMIN = ServerAdmin(COMMANDS, keys=lambda: len(keyspace), expires=lambda: len(expires))


# --- connections -------------------------------------------------------------


class Connection(DListNode):
    """One client's socket and the state kept for it between events.

    It is also a node of the idle list (its `prev` and `next` links).
    """

    __slots__ = ("sock", "parser", "outgoing", "closing", "input_closed", "polled_events", "last_active", "blocked",
                 "deny_blocking")  # fmt: skip

    def __init__(self, sock: socket.socket, client_id: int) -> None:
        super().__init__()
        self.last_active = time.monotonic()
        self.sock = sock
        self.parser = RequestParser()
        self.outgoing = ReplyBuffer(client_id)  # replies not yet sent, in the client's protocol
        self.closing = False  # close once the outgoing replies are sent
        self.input_closed = False  # the client sends no more: close once all it sent is answered
        self.polled_events = select.POLLIN  # what the poller waits for now
        # A command may leave its client waiting for something (Redis's
        # CLIENT_BLOCKED, as its blocking commands do): until it is
        # released, the requests it sent after that one wait unexecuted.
        # While `deny_blocking` (Redis's CLIENT_DENY_BLOCKING), such a
        # command answers at once, as if its timeout had passed.
        self.blocked = self.deny_blocking = False

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
# Connections the idle timeout must not close, as Redis spares a replica
# and its master: a server built on this one registers how to tell them.
idle_exemptions: list[Callable[[Connection], bool]] = []


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


def close_idle_connections(poller: Poller, clients: dict[int, Connection]) -> None:
    """Close every connection idle for idle_timeout or longer: all at the front."""
    if not idle_timeout:
        return
    now = time.monotonic()
    while (oldest := idle_connections.front()) is not None and oldest.last_active + idle_timeout <= now:
        if idle_exemptions and any(exempt(oldest) for exempt in idle_exemptions):
            touch(oldest)  # never closed for idleness: its timer starts again
            continue
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
    ADMIN.traffic.reads_processed += 1
    ADMIN.traffic.net_input_bytes += len(data)
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


# The connection whose requests are being executed: Redis's
# server.current_client, for a command that acts on its own client.
current_client: Connection | None = None
# How a client's buffered requests are run: one at a time below (Redis's
# processInputBuffer), unless a server built on this one registers its own
# way (a batch at a time); the first registered runs them, and hands each
# request it does not take to process_request.
input_processors: list[Callable[[Connection], None]] = []


def execute_requests(conn: Connection) -> None:
    """Answer every complete request buffered, while the output is not too
    big and the client is neither blocked nor being closed."""
    global current_client
    current_client = conn
    try:
        if input_processors:
            input_processors[0](conn)
            return
        while may_execute(conn) and (request := conn.parser.next_request()) is not None:
            if not process_request(conn, request):
                break
    except ProtocolError as error:
        conn.outgoing.error(f"ERR {error}")
        conn.closing = True
    except Exception:
        # A bug in a command must cost this one connection, not the server.
        log.exception("internal error while executing a request; closing the connection")
        conn.outgoing.error("ERR internal error")
        conn.closing = True


def may_execute(conn: Connection) -> bool:
    return len(conn.outgoing) < MAX_OUTPUT and not conn.blocked and not conn.closing


def process_request(conn: Connection, request: list[bytes]) -> bool:
    """Run one request and tell command_processed_tasks (Redis's
    processCommandAndResetClient); False if the client asked to be
    disconnected (QUIT): reply, close, run nothing it sent after."""
    out = conn.outgoing
    reply_start = len(out)
    if COMMANDS.process_command(request, out):
        conn.closing = True
        return False
    for task in command_processed_tasks:
        task(conn, request, reply_start)
    return True


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
    ADMIN.traffic.writes_processed += 1
    ADMIN.traffic.net_output_bytes += sent
    # Deleting from the front of a bytearray moves its start pointer in
    # CPython; the unsent rest is not copied.
    del conn.outgoing[:sent]
    if len(conn.outgoing) < MAX_OUTPUT and not conn.closing and conn.parser.buffered():
        # Requests held back by MAX_OUTPUT can run now.
        execute_requests(conn)


# --- the event loop --------------------------------------------------------------
# One iteration, as Redis's ae.c runs it: before_sleep() (send the replies
# the last events produced), wait in poll() until a socket is ready or the
# next timer is due, handle the ready sockets (read and execute: replies
# wait), then the timers (server_cron()). What a server built on this one
# adds to the loop registers into the lists below instead of changing it.
# The loop waits on a `Poller`: select.poll(), or any object with its four
# calls (register, modify, unregister, poll in ms), as Redis's ae.c runs
# one loop on select, poll, epoll or kqueue.
Poller = Any

# Every connection gets the next number, as Redis's client ids.
client_ids = itertools.count(1)
# Connections with replies to send or interest to change, in the order they
# became so: Redis's clients_pending_write, handled in before_sleep().
clients_pending_write: dict[int, Connection] = {}  # id(conn) -> conn
# Work that must precede this iteration's replies (Redis's beforeSleep()
# does its own: unblocked clients, then the append-only file, then writes).
before_sleep_tasks: list[Callable[[], None]] = []
before_replies: list[Callable[[], None]] = []
# Once per iteration after the events, with the idle timers and expiry
# (Redis's serverCron()); and how long each may let poll() sleep, in ms
# (None: no limit), as Redis's time events.
cron_tasks: list[Callable[[], None]] = []
timers: list[Callable[[], int | None]] = []
# When a client is closed (Redis's freeClient()): what is kept per client is let go.
close_tasks: list[Callable[[Connection], None]] = []
# Run once for every new connection (Redis's createClient).
accept_tasks: list[Callable[[Connection], None]] = []
# After each request a connection sent has run: (connection, request, where
# its reply starts in the output), as Redis's commandProcessed().
command_processed_tasks: list[Callable[[Connection, list[bytes], int], None]] = []

# Sockets the loop watches besides the listener and the clients, each with
# what to do when it is ready (Redis's aeCreateFileEvent): a server built on
# this one that opens a connection of its own (a replica's link to its
# master) watches it here while it is not a client. Set by run_event_loop.
file_events: dict[int, Callable[[int], None]] = {}
running_poller: Poller | None = None
running_clients: dict[int, Connection] = {}


def watch_socket(sock: Any, events: int, handler: Callable[[int], None]) -> None:
    """Call handler(events) when `sock` (or any file with a fileno(): a
    pipe) is ready for `events` (again: change what it waits for)."""
    fd = sock.fileno()
    if fd in file_events:
        running_poller.modify(fd, events)
    else:
        running_poller.register(fd, events)
    file_events[fd] = handler


def unwatch_socket(sock: Any) -> None:
    if file_events.pop(sock.fileno(), None) is not None:
        running_poller.unregister(sock.fileno())


def accept_clients(acceptor: Acceptor, poller: Poller, clients: dict[int, Connection]) -> None:
    """Accept every connection waiting in the listen queue; past
    maxclients the acceptor refuses them with Redis's error."""
    while (accepted := acceptor.accept(len(clients))) is not None:
        sock, address = accepted
        add_client(sock, poller, clients)
        log.debug("connection from %s:%d", *address[:2])


def add_client(sock: socket.socket, poller: Poller, clients: dict[int, Connection]) -> Connection:
    """Serve `sock` as a client: accepted, or opened by this server (a replica's link to its master)."""
    sock.setblocking(False)
    # Replies are written whole; don't let Nagle's algorithm hold them back.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Connection(sock, next(client_ids))
    idle_connections.push_back(conn)
    clients[sock.fileno()] = conn
    poller.register(sock, conn.polled_events)
    try:
        for task in accept_tasks:
            task(conn)
    except Exception:  # a bug in a task must cost this one connection, not the server
        log.exception("internal error while accepting a client; closing the connection")
        conn.closing = True
        clients_pending_write[id(conn)] = conn
    return conn


def close_client(conn: Connection, poller: Poller, clients: dict[int, Connection]) -> None:
    for task in close_tasks:
        task(conn)
    idle_connections.detach(conn)
    clients_pending_write.pop(id(conn), None)
    fd = conn.sock.fileno()
    poller.unregister(fd)
    del clients[fd]
    conn.sock.close()


def handle_events(conn: Connection, events: int) -> None:
    """Serve what the poller reported for one client: read and execute its
    requests. The replies go out in before_sleep()."""
    # POLLHUP/POLLERR come without POLLIN on some systems; recv() then
    # reports what happened.
    if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
        handle_readable(conn)
    if events & select.POLLOUT and conn.outgoing:
        # Writable again after a full buffer: the client reads its replies,
        # so it is not idle. (Its requests touch it in handle_readable.)
        touch(conn)
    clients_pending_write[id(conn)] = conn


def send_replies(conn: Connection, poller: Poller, clients: dict[int, Connection]) -> None:
    """Send the replies waiting for `conn`, then close it if it is done, or
    change what it is polled for if that changed."""
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


def before_sleep(poller: Poller, clients: dict[int, Connection]) -> None:
    """Redis's beforeSleep(): the registered work, then every reply this
    iteration produced goes out, in one pass."""
    for task in before_sleep_tasks:
        task()
    for task in before_replies:
        task()
    while clients_pending_write:
        conn = clients_pending_write.pop(next(iter(clients_pending_write)))
        send_replies(conn, poller, clients)


def server_cron(poller: Poller, clients: dict[int, Connection]) -> None:
    """Redis's serverCron(): the timers, checked once per iteration."""
    close_idle_connections(poller, clients)
    expire_keys()
    for task in cron_tasks:
        task()


def next_wakeup_ms() -> int | None:
    """How long poll() may sleep: this chapter's timers, and those registered."""
    waits = [next_timer_ms(), *(timer() for timer in timers)]
    waits = [wait for wait in waits if wait is not None]
    return min(waits) if waits else None


def run_event_loop(acceptor: Acceptor, poller: Poller) -> None:
    """Serve until stopped, on `poller`."""
    global running_poller, running_clients
    listener = acceptor.listener
    listener.setblocking(False)
    poller.register(listener, select.POLLIN)
    listener_fd = listener.fileno()
    clients: dict[int, Connection] = {}
    running_poller, running_clients = poller, clients
    # A poller may say which API it waits in (INFO multiplexing_api); select.poll() does not.
    ADMIN.serve(acceptor, clients, counting=True, api=getattr(poller, "api", "poll"))
    while True:
        before_sleep(poller, clients)
        for fd, events in poller.poll(next_wakeup_ms()):
            if fd == listener_fd:
                accept_clients(acceptor, poller, clients)
            elif fd in clients:
                handle_events(clients[fd], events)
            else:
                file_events[fd](events)
        server_cron(poller, clients)
        ADMIN.traffic.eventloop_cycles += 1


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
    """Apply the command line's settings."""
    global idle_timeout, lazy_free_threshold, free_slice
    idle_timeout = options.idle_timeout
    ADMIN.config.add_integer("timeout", lambda: round(idle_timeout), set_idle_timeout)
    lazy_free_threshold = options.lazy_free_threshold
    free_slice = options.free_slice


def run(options: argparse.Namespace, poller: Callable[[], Poller] = select.poll) -> None:
    """Listen, start the worker pool, and run the event loop on a new
    `poller()` until stopped."""
    global worker_pool
    # One worker: with the GIL, more threads would take turns, not work in parallel.
    with create_listener(options.host, options.port) as listener, ThreadPool(1, "lazy-free") as pool:
        if lazy_free_threshold > 0:
            worker_pool = pool
        ADMIN.extra_info["memory"] = [lambda: {"lazyfree_pending_objects": pool.pending()}]
        log.info("listening on %s:%d", options.host, options.port)
        acceptor = Acceptor(listener, max_clients_for_fd_limit(options.maxclients))
        serve(lambda: run_event_loop(acceptor, poller()))


def main() -> None:
    options = parse_options("Chapter 14: a thread pool for large deletions", add_options, client_limits=True)
    configure(options)
    run(options)


if __name__ == "__main__":
    main()
