"""Chapter 23 (beyond the book): the fast path.

Chapters 15 to 22 each put something around every command: chapter 21
notes the client's last command and checks its ACL user, chapter 18 may
queue the command in a transaction, chapter 19 may refuse it in a
subscribed context and counts its output against a limit, chapter 21
feeds monitors, the slow log and the error counts, chapters 16 to 22
propagate a write, wake clients blocked on its key, touch its watchers.
Each is one Python call, and most have nothing to do most of the time:
twenty-odd calls around a GET that itself costs a microsecond. Redis
pays for the same checks in C, where they cost nanoseconds.

The lesson here is the profiler's (README: the per-request cost table,
before and after each step; cost_per_request.py measures it): a check
that gives the same answer for a whole batch of requests is asked once
per batch, not once per request.
A client's requests go through `process_input` (registered into chapter
14's input_processors, Redis's processInputBuffer):

* while the client is *plain* (`plain_client`: no transaction, no
  subscription, replies on, an unrestricted user, no monitor, no pause,
  not a replica), and for writes while the server is (`plain_writes`:
  nothing propagates them, nobody watches a key, writes are not
  refused), a request for one of FAST_COMMANDS runs its command
  function straight away, with the bookkeeping each skipped hook would
  have done done inline: its statistics (one clock read per request, not
  two), the slow log, the error counts, the change counter;
* anything else takes chapter 14's process_request, the full path;
  the client is asked again whether it is plain when its next fast
  request comes (MULTI, for one, just made it not).

The keys live in compact_keyspace.py's table (registered with chapter
14's use_keyspace_table): two lists of keys and values, no object per
key. GET and SET read and write it inline here while no key has a TTL;
chapter 14's functions see its keys through handles, as Entries.

SKIPPED says, for every hook registered around a command, why the fast
path may skip it; a test fails when a hook is added without a line
there. The replies are the command functions' own: every test and
Redis's suite run on this chapter as on chapter 22.

    make run-chapter 23
    make bench CHAPTERS=22-23
"""

from __future__ import annotations

import sys
from pathlib import Path
from time import perf_counter_ns  # a global name: one lookup less per request than time.perf_counter_ns
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter, load_chapter_module  # noqa: E402
from common.commands import ERROR_MARK, WRONGTYPE  # noqa: E402

chapter22 = load_chapter(22)  # the server this chapter speeds up: everything before it
compact_keyspace = load_chapter_module(23, "compact_keyspace")
chapter21 = chapter22.chapter21
chapter19, chapter17, chapter16, chapter14 = chapter21.chapter19, chapter21.chapter17, chapter21.chapter16, chapter21.chapter14
chapter18 = chapter21.chapter18
snapshots, append_only = chapter16.snapshots, chapter16.append_only
acl, watching, pause = chapter21.acl, chapter21.watching, chapter21.pause
replica_side, STREAM, MIN_REPLICAS = chapter22.replica_side, chapter22.STREAM, chapter22.MIN_REPLICAS
COMMANDS = chapter14.COMMANDS
MAX_OUTPUT = chapter14.MAX_OUTPUT

# The commands that may skip the hooks: the most frequent, whose only
# effects are the keyspace's and the hooks' below. A request takes the
# fast path only in its plainest form (SET without options), which its
# exact arity picks out; any other goes the full way.
GET, SET = b"get", b"set"  # the two the loop runs itself (a name from fast_table *is* one of these)
FAST_COMMANDS = {GET: 2, SET: 3, b"ping": 1}
# Every command by name, in lower and upper case (as clients send them, so
# that the name need not be lowered): (arity, spec, lower-case name), the
# arity NOT_FAST for the commands not above, which no request has: one
# lookup tells a full-path request too.
NOT_FAST = -1
fast_table: dict[bytes, tuple[int, Any, bytes]] = {}

# Every hook chapters 14 to 22 register around a command, and why the fast
# path may skip it while plain_client() and, for a write, plain_writes() hold.
SKIPPED = {
    "checks": {
        "chapter21.note_command": "done once per batch, for its last request (CLIENT LIST's cmd=, argv-mem)",
        "chapter21.require_auth": "plain: the client is authenticated",
        "chapter18.check_in_transaction": "plain: not in MULTI",
        "chapter21.check_acl": "plain: its user may run every command on every key",
        "chapter19.check_subscribed_context": "plain: not subscribed",
        "chapter22_replica.refuse_stale": "plain: this server is a master",
    },
    "write_checks": {
        "chapter22_replica.refuse_writes": "plain: this server is a master",
        "chapter16.refuse_writes": "plain writes: no AOF, and the last BGSAVE worked or no save rules",
        "chapter22.refuse_without_replicas": "plain writes: min-replicas-to-write 0",
    },
    "before_call": {
        "chapter21_pause.hold_if_paused": "plain: no CLIENT PAUSE in effect",
        "chapter18.queue_command": "plain: not in MULTI",
    },
    "after_call": {
        "chapter19.limit_own_output": "plain: the client's class has no output limit",
        "chapter21_watching.feed_monitors": "plain: no monitor",
        "chapter21_watching.log_if_slow": "inline: called when the request took slowlog-log-slower-than",
        "chapter21.note_output_peak": "once per batch: the output only grows during one",
        "chapter21.count_failed_call": "inline: an error reply is counted",
        "chapter21.drop_muted_reply": "plain: CLIENT REPLY ON",
        "chapter22.propagate_publish": "PUBLISH is not a fast command",
    },
    "after_write": {
        "chapter16.after_write": "plain writes: no AOF, no replication stream; the changes counted per batch",
        "chapter17.signal_keys_as_ready": "SET makes a string, which serves no blocked client (it stays blocked, as in Redis)",
        "chapter18.touch_watched_keys": "plain writes: no key watched",
    },
    "after_command": {
        "chapter16_append_only.propagate_pending": "run after any fast request that left a unit pending (a lazily expired key)",
        "chapter17.serve_clients_blocked_on_keys": "a fast request signals no key (the line above)",
        "chapter22.note_written": "run with the line above: the stream grows only by a pending unit",
    },
    "on_reject": {
        "chapter18.abort_on_refusal": "the fast path refuses nothing",
        "chapter21.count_rejection": "the fast path refuses nothing",
        "chapter21.drop_muted_error": "the fast path refuses nothing",
    },
    "keyspace_listeners": {
        "chapter19.publish_keyspace_event": "told by a fast SET while notify-keyspace-events is on",
        "chapter22.propagate_expiry": "hears expired keys only, which a fast SET or GET does not make",
    },
    "command_processed_tasks": {
        "chapter22_replica.master_command_processed": "plain: this server is a master, so no client is its master",
    },
}


def plain_client(conn: Any) -> bool:
    """Nothing the full path does around a command applies to this client
    now. Asked when a fast request comes: once per batch, again after
    any request the full path ran."""
    client = chapter21.clients.get(conn)
    if client is None or not client.authenticated or client.reply != "on":
        return False
    user = acl.users.get(client.user)
    if user is None or not user.unrestricted():
        return False
    transaction = chapter18.transactions.get(conn)
    if transaction is not None and transaction.in_multi:
        return False
    if conn in chapter19.subscribers or chapter19.output_limits.limited(chapter19.client_class(conn)):
        return False
    return not watching.monitors and not pause.pause.until and not replica_side.is_replica()


def plain_writes() -> bool:
    """A write would be neither refused, propagated nor watched."""
    return (
        append_only.aof is None
        and not STREAM.wants_units()
        and (snapshots.last_bgsave_ok or not chapter16.settings.save_rules)
        and not MIN_REPLICAS.to_write
        and not chapter18.watched_keys
    )


def process_input(conn: Any) -> None:
    """Run `conn`'s buffered requests (chapter 14's input_processors):
    the fast commands straight away while the client is plain, the others
    through chapter 14's process_request."""
    parser, out = conn.parser, conn.outgoing
    # What the fast requests need to know, read when one comes (a batch
    # of full-path requests never reads it) and again after any full-path
    # request, which may change it (MULTI, FLUSHALL ASYNC, CONFIG SET, EXPIRE).
    plain: bool | None = None
    writes = events = False
    no_ttls = True  # only the full path gives a key a TTL
    keyspace: Any = None
    traffic: Any = None
    slow_ns: int | None = None
    stopped = False  # blocked or closing: only a full-path request makes it so
    changes = 0  # fast writes not yet told to the save rules: told before a full-path request, and at the end
    last: tuple[int, Any, bytes] | None = None  # the last request run fast: its fast_table entry, and the request
    last_request: list[bytes] = []
    started = 0
    while chapter14.may_execute(conn) and (batch := parser.next_requests()):
        for index, request in enumerate(batch):
            reply_start = len(out)
            if reply_start >= MAX_OUTPUT or stopped:  # chapter 14's may_execute, inline
                parser.put_back(batch[index:])
                break
            found = fast_table.get(request[0]) or fast_table.get(request[0].lower())  # as clients send it: no lower()
            if found is not None and found[0] != len(request):
                found = None  # not a fast command, or not in its plainest form
            if found is not None and plain is None:
                plain = plain_client(conn)
                writes = plain and plain_writes()
                keyspace, traffic = chapter14.keyspace, chapter14.ADMIN.traffic
                events, no_ttls = bool(chapter19.notify_classes), not chapter14.expires
                slower_than = watching.slowlog.slower_than
                slow_ns = slower_than * 1000 if slower_than >= 0 else None
            if found is None or not plain or (found[1].writes and not writes):
                last = None  # the full path notes its own request
                if changes:
                    snapshots.note_change(SET, changes)
                    changes = 0
                chapter14.process_request(conn, request)  # after QUIT, the client is closing: the check above stops
                plain, stopped = None, conn.blocked or conn.closing
                continue
            _, spec, name = found
            if last is None:  # the first of a run of fast requests: its own start
                started = perf_counter_ns()
            if name is GET and no_ttls:  # chapter 14's get, on the table's values: no handle
                value = keyspace.value_of(request[1])
                if value is None:
                    traffic.keyspace_misses += 1
                    out.null()
                else:
                    traffic.keyspace_hits += 1
                    if type(value) is bytes:
                        out += b"$%d\r\n%s\r\n" % (len(value), value)  # out.bulk(value), a call fewer
                    else:  # a key of another type: an error, counted as after_call counts one
                        out.error(WRONGTYPE)
                        spec.failed_calls += 1
                        chapter21.count_error(out, reply_start)
            elif name is SET and no_ttls:  # chapter 14's set_plain: no handle, no Entry
                old = keyspace.store(request[1], request[2])
                if old is not None and type(old) is not bytes:
                    chapter14.discard(old)  # a collection it replaced
                if events:  # add_entry's "new", set_plain's "set"
                    if old is None:
                        chapter14.notify_keyspace_event("n", "new", request[1])
                    chapter14.notify_keyspace_event("$", "set", request[1])
                out += b"+OK\r\n"
                changes += 1
            else:  # PING, or a key with a TTL to look at: the command itself
                COMMANDS.current = spec  # lookup_live counts a read's hits and misses by it
                spec.function(request[1:], out)
                if out[reply_start] == ERROR_MARK:
                    spec.failed_calls += 1
                    chapter21.count_error(out, reply_start)
                elif spec.writes:
                    changes += 1
                if append_only.pending:  # a key GET found expired, to propagate as DEL
                    for listener in COMMANDS.after_command:
                        listener()
            now = perf_counter_ns()
            elapsed, started = now - started, now  # one clock read per request after it: its end starts the next
            spec.calls += 1
            spec.nanoseconds += elapsed
            if slow_ns is not None and elapsed >= slow_ns:
                COMMANDS.last_call_ns, COMMANDS.request_name = elapsed, request[0]
                watching.log_if_slow(name, spec, request[1:], out, reply_start)
            last, last_request = found, request
    if changes:
        snapshots.note_change(SET, changes)
    if last is not None:  # chapter 21's note_command and note_output_peak, once, for the last fast request
        _, spec, name = last
        chapter21.note_command(name, spec, last_request[1:], out)
        chapter21.note_output_peak(name, spec, last_request[1:], out, len(out))


def add_commands() -> None:
    """Chapter 22's server, its requests run through process_input."""
    chapter22.add_commands()
    chapter14.use_keyspace_table(compact_keyspace.CompactKeyspace)
    for name, spec in COMMANDS.commands.items():
        fast_table[name] = fast_table[name.upper()] = (NOT_FAST, spec, name)
    for name, arity in FAST_COMMANDS.items():  # their names as GET and SET above: the loop tells them by `is`
        fast_table[name] = fast_table[name.upper()] = (arity, COMMANDS.commands[name], name)
    chapter14.input_processors.append(process_input)


def main() -> None:
    chapter16.serve_chapter("Chapter 23: the fast path", chapter22.add_options, add_commands, chapter22.configure)


if __name__ == "__main__":
    main()
