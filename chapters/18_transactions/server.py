"""Chapter 18 (beyond the book): transactions: MULTI, EXEC, DISCARD, WATCH.

How does Redis make several commands atomic with one thread and no locks?
The thread is the answer: a command never runs halfway while another
does. So a transaction only has to hold its commands back and run them
back to back:

* MULTI starts queueing: each command after it is checked (it exists,
  its number of arguments, it may run now) and answered +QUEUED instead of
  run. EXEC runs them all, one after the other, in one event-loop turn:
  no other client's command can come in between. DISCARD drops them.
* A command refused while queueing (unknown, wrong arity) marks the
  transaction, and its EXEC runs nothing: -EXECABORT. A command that fails
  while EXEC runs it (a WRONGTYPE) fails alone: the others ran, and stay.
  There is no rollback, by design: such an error is a bug in the program
  that sent it, which a rollback would not fix; and Redis would have to
  keep an undo log for every write.
* WATCH is optimistic locking: EXEC fails (a null reply) if anyone wrote
  to a watched key since WATCH. The server keeps a dict from each watched
  key to its watchers (Redis's db->watched_keys), and every write looks
  its keys up in it (Redis's touchWatchedKey): a write to a key nobody
  watches costs one dict lookup, and nothing at all while nobody watches.
  A client reads, computes, and commits with MULTI ... EXEC if nothing
  changed meanwhile, or tries again.

All of it runs through chapter 14's seams, on chapter 17's server: a
check before every command (what may not run inside a transaction; EXEC
with writes passes the write checks), one after every check (queue it),
a listener on refusals (abort) and on writes (touch the watchers), the
client's close. Chapter 14's after_command fires once the whole of EXEC
is over: only then are the clients blocked on the keys it fed served,
and chapter 16 logs what it changed as one unit, wrapped in MULTI ...
EXEC, so that a crash while writing it leaves no half transaction.

    make run-chapter 18
    redis-cli
    > WATCH counter
    > GET counter
    > MULTI
    > SET counter 1
    > EXEC
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.commands import CommandSpec  # noqa: E402
from common.resp import RequestParser  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402

chapter17 = load_chapter(17)  # the server this chapter extends, blocking pops and persistence included
chapter16 = chapter17.chapter16  # its AOF: a transaction is logged as one unit
chapter14 = chapter17.chapter14  # the keyspace, the command table, the clients
COMMANDS = chapter14.COMMANDS

# Roughly what Python spends on a queued command and each of its
# arguments, and on a watched key, beyond their bytes: a transaction counts
# against its client's client-query-buffer-limit (queued commands are
# input not yet executed), so that one client cannot fill the memory.
QUEUED_COMMAND_COST = 160
ARGUMENT_COST = 48
WATCHED_KEY_COST = 250


# --- what a client in a transaction holds -----------------------------------------------


@dataclass(eq=False, slots=True)
class WatchedKey:
    """One client watching one key: an item of both the client's list and the key's."""

    key: bytes
    watcher: Transaction
    existed: bool  # there, and not expired, when WATCH came: FLUSHALL touches it
    deadline: int | None  # its TTL's deadline then (Unix ms): EXEC fails once it has passed


@dataclass(eq=False, slots=True)
class Transaction:
    """A client's MULTI and WATCH state (Redis keeps it in the client:
    c->mstate, c->watched_keys, the CLIENT_MULTI and CLIENT_DIRTY_* flags)."""

    client: Any  # chapter 14's Connection
    in_multi: bool = False
    queued: list[tuple[bytes, CommandSpec, list[bytes]]] = field(default_factory=list)
    writes: bool = False  # a queued command may write: EXEC then passes the write checks
    refused: bool = False  # a command was refused while queueing: EXEC aborts (CLIENT_DIRTY_EXEC)
    touched: bool = False  # a watched key was written to: EXEC fails (CLIENT_DIRTY_CAS)
    watched: dict[bytes, WatchedKey] = field(default_factory=dict)  # key -> how it was at WATCH
    queue_memory: int = 0  # what its queue costs, roughly, in bytes
    watch_memory: int = 0  # and its watched keys


transactions: dict[Any, Transaction] = {}  # client -> its state, while in MULTI or watching keys
watched_keys: dict[bytes, list[WatchedKey]] = {}  # key -> its watchers (Redis's db->watched_keys)


def transaction_of(conn: Any) -> Transaction:
    state = transactions.get(conn)
    if state is None:
        state = transactions[conn] = Transaction(conn)
    return state


def discard_transaction(state: Transaction) -> None:
    """Leave MULTI, unwatch everything, forget the client's state (Redis's discardTransaction)."""
    unwatch_all(state)
    transactions.pop(state.client, None)


def forget_client(conn: Any) -> None:
    """The client is closed (chapter 14's close_tasks)."""
    state = transactions.get(conn)
    if state is not None:
        discard_transaction(state)


# --- MULTI, EXEC, DISCARD ---------------------------------------------------------------

# Not queued inside MULTI: they act on the transaction itself. (QUIT is
# answered before any check, by chapter 07's command table.)
NOT_QUEUED = {b"exec", b"discard", b"multi", b"watch", b"reset"}


def multi(args: list[bytes], out: ReplyBuffer) -> None:
    state = transaction_of(chapter14.current_client)
    if state.in_multi:
        out.error("ERR MULTI calls can not be nested")
        return
    state.in_multi = True
    out.simple("OK")


def discard(args: list[bytes], out: ReplyBuffer) -> None:
    state = transactions.get(chapter14.current_client)
    if state is None or not state.in_multi:
        out.error("ERR DISCARD without MULTI")
        return
    discard_transaction(state)
    out.simple("OK")


def exec_(args: list[bytes], out: ReplyBuffer) -> None:
    """EXEC: run the queued commands back to back, unless the transaction
    was refused a command (-EXECABORT) or a watched key changed (a null)."""
    conn = chapter14.current_client
    state = transactions.get(conn)
    if state is None or not state.in_multi:
        out.error("ERR EXEC without MULTI")
        return
    if state.refused:
        out.error("EXECABORT Transaction discarded because of previous errors.")
        discard_transaction(state)
        return
    if state.touched or watched_key_expired(state):
        out.null_array()
        discard_transaction(state)
        return
    queued = state.queued
    discard_transaction(state)  # unwatch before running: its own writes must not touch it
    unit_start = len(chapter16.append_only.pending)
    conn.deny_blocking = True  # BZPOPMIN and friends answer at once, as on a timeout
    try:
        out.array(len(queued))
        for name, spec, queued_args in queued:
            COMMANDS.call(name, spec, queued_args, out)
    finally:
        conn.deny_blocking = False
    # Chapter 16 logs what the queued commands changed once EXEC is over:
    # more than one change is wrapped, so that a replay runs all or none.
    pending = chapter16.append_only.pending
    if len(pending) - unit_start > 1:
        pending.insert(unit_start, [b"MULTI"])
        pending.append([b"EXEC"])


# --- around every command: chapter 14's seams ----------------------------------------


def check_in_transaction(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Before a command runs (chapter 14's checks; True: answered): what
    may not run inside MULTI is refused; an EXEC whose queue writes passes
    the write checks first, as a write would (a MISCONF aborts it)."""
    if not transactions:
        return False
    state = transactions.get(chapter14.current_client)
    if state is None or not state.in_multi:
        return False
    if "no_multi" in spec.flags:
        out.error("ERR Command not allowed inside a transaction")
        return True
    if name == b"exec" and state.writes:
        return any(check(name, spec, args, out) for check in COMMANDS.write_checks)
    return False


def queue_command(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Once every check passed (chapter 14's before_call): inside MULTI,
    queue the command instead of running it."""
    if not transactions or name in NOT_QUEUED:
        return False
    state = transactions.get(chapter14.current_client)
    if state is None or not state.in_multi:
        return False
    if not (state.refused or state.touched):  # EXEC will run nothing: keep nothing (as Redis)
        state.queue_memory += QUEUED_COMMAND_COST + sum(ARGUMENT_COST + len(arg) for arg in args)
        if state.queue_memory + state.watch_memory > RequestParser.max_query_buffer:
            out.error("ERR Transaction discarded: its queued commands passed client-query-buffer-limit")
            state.refused, state.queued = True, []
            return True
        state.queued.append((name, spec, args))
        state.writes = state.writes or spec.writes
    out.simple("QUEUED")
    return True


def abort_on_refusal(name: bytes, out: ReplyBuffer, reply_start: int) -> None:
    """A command was refused (chapter 14's on_reject): inside MULTI, EXEC
    will abort. A refused EXEC aborts at once, with the refusal's reason
    (Redis's execCommandAbort)."""
    state = transactions.get(chapter14.current_client) if transactions else None
    if state is not None and state.in_multi:
        state.refused = True
    if name != b"exec":
        return
    reason = bytes(out[reply_start + 1 : -2]).decode(errors="replace")
    if reason.startswith("ERR wrong number of arguments"):
        reason = reason.removeprefix("ERR ")  # Redis builds this one without the code its replies add
    del out[reply_start:]
    out.error(f"EXECABORT Transaction discarded because of: {reason}")
    if state is not None:
        discard_transaction(state)


# --- WATCH ------------------------------------------------------------------------------


def watch(args: list[bytes], out: ReplyBuffer) -> None:
    """WATCH key [key ...]: EXEC fails if any of them changes from now on."""
    state = transaction_of(chapter14.current_client)
    if state.in_multi:
        out.error("ERR WATCH inside MULTI is not allowed")
        return
    if state.touched:  # EXEC will fail anyway: no point watching more (as Redis)
        out.simple("OK")
        return
    new_keys = [key for key in dict.fromkeys(args) if key not in state.watched]
    cost = sum(WATCHED_KEY_COST + len(key) for key in new_keys)
    if state.queue_memory + state.watch_memory + cost > RequestParser.max_query_buffer:
        out.error("ERR too many watched keys for this client: past client-query-buffer-limit")
        return
    state.watch_memory += cost
    now = chapter14.now_ms()
    for key in new_keys:
        deadline = chapter14.deadline_of(key)
        # Read without chapter 13's lazy expiry: WATCH does not delete. A
        # key already expired counts as absent (its deletion changes nothing).
        live = chapter14.keyspace.lookup(key) is not None and (deadline is None or deadline > now)
        watched = WatchedKey(key, state, existed=live, deadline=deadline if live else None)
        state.watched[key] = watched
        watched_keys.setdefault(key, []).append(watched)
    out.simple("OK")


def unwatch(args: list[bytes], out: ReplyBuffer) -> None:
    state = transactions.get(chapter14.current_client)
    if state is not None:
        unwatch_all(state)
        state.touched = False
        if not state.in_multi:
            del transactions[state.client]
    out.simple("OK")


def unwatch_all(state: Transaction) -> None:
    for watched in state.watched.values():
        watchers = watched_keys[watched.key]
        watchers.remove(watched)
        if not watchers:
            del watched_keys[watched.key]
    state.watched.clear()
    state.watch_memory = 0


def touch(watchers: list[WatchedKey]) -> None:
    """Mark the watchers' transactions to fail, and unwatch their keys: they
    would only be touched again (Redis's touchWatchedKey)."""
    for state in {watched.watcher for watched in watchers}:
        state.touched = True
        unwatch_all(state)


def touch_watched_keys(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After a write that did not fail (chapter 14's after_write), touch
    the watchers of the keys it names. One dict lookup per key; none while
    nobody watches. A write that changed nothing by its reply (DEL of a
    missing key: chapter 16's rule) touches nothing."""
    if not watched_keys or len(out) == reply_start:
        return
    if name in (b"flushall", b"flushdb"):
        # Every key is gone: those that were there changed, the others did not.
        touch([watched for watchers in watched_keys.values() for watched in watchers if watched.existed])
        return
    if name in chapter16.ZERO_IS_NO_CHANGE and out.startswith(b":0\r\n", reply_start):
        return
    for key in spec.keys(args):
        watchers = watched_keys.get(key)
        if watchers:
            touch(watchers)


def touch_propagated(command: list[bytes]) -> None:
    """A change made outside any command (a blocked client served: chapter
    16's propagate) touches the watchers of the keys its command names."""
    spec = COMMANDS.commands.get(command[0].lower()) if watched_keys else None
    if spec is not None:
        for key in spec.keys(command[1:]):
            watchers = watched_keys.get(key)
            if watchers:
                touch(watchers)


def watched_key_expired(state: Transaction) -> bool:
    """A watched key that was there at WATCH and has expired since: it
    changed, whether or not it is deleted yet (Redis's isWatchedKeyExpired,
    and the touch of its deletion). Writes that changed its TTL since
    touched it already."""
    now = chapter14.now_ms()
    return any(watched.deadline is not None and watched.deadline <= now for watched in state.watched.values())


# --- RESET ------------------------------------------------------------------------------

# What else RESET clears, registered by the servers built on this one (a
# subscriber's channels, a client's name): Redis's clearClientConnectionState.
reset_tasks: list[Callable[[Any], None]] = []


def reset(args: list[bytes], out: ReplyBuffer) -> None:
    """RESET: the connection as new: no transaction, no watched key, RESP2."""
    conn = chapter14.current_client
    state = transactions.get(conn)
    if state is not None:
        discard_transaction(state)
    for task in reset_tasks:
        task(conn)
    out.protocol = 2
    out.simple("RESET")


# --- wiring -----------------------------------------------------------------------------


def add_commands() -> None:
    """Chapter 17's commands, and the transaction's, wired into chapter 14's seams."""
    chapter17.add_commands()
    COMMANDS.add_all({
        b"multi": CommandSpec(multi, 1, ("noscript", "loading", "stale", "fast", "allow_busy")),
        b"exec": CommandSpec(exec_, 1, ("noscript", "loading", "stale", "skip_slowlog")),
        b"discard": CommandSpec(discard, 1, ("noscript", "loading", "stale", "fast", "allow_busy")),
        b"watch": CommandSpec(watch, -2, ("noscript", "loading", "stale", "fast", "allow_busy"), 1, -1, 1),
        b"unwatch": CommandSpec(unwatch, 1, ("noscript", "loading", "stale", "fast", "allow_busy")),
        b"reset": CommandSpec(reset, 1, ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy")),
    })
    COMMANDS.checks.append(check_in_transaction)
    COMMANDS.before_call.append(queue_command)
    COMMANDS.on_reject.append(abort_on_refusal)
    COMMANDS.after_write.append(touch_watched_keys)
    chapter16.propagate_listeners.append(touch_propagated)
    chapter14.close_tasks.append(forget_client)


def main() -> None:
    chapter16.serve_chapter("Chapter 18: transactions", chapter16.add_options, add_commands)


if __name__ == "__main__":
    main()
