"""CLIENT PAUSE and UNPAUSE: hold every command, or every write, for a while.

Part of chapter 21. An operator pauses clients to fail over or to let a
replica catch up: while a pause lasts, a command of any client (ALL), or
a write (WRITE), is held back with its client, which runs nothing more
until the pause ends; then each held command runs again from the start,
every check again, in arrival order (Redis's BLOCKED_POSTPONE).

Wired by server.py: `hold_if_paused` first of chapter 14's before_call,
`end_pause` in its before_sleep_tasks, `next_pause_end_ms` in its timers.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.chapters import load_chapter
from common.commands import CommandSpec, parse_timeout_ms
from common.resp3 import ReplyBuffer

chapter20 = load_chapter(20)
chapter18 = chapter20.chapter19.chapter18  # a transaction's EXEC is a write if it queued one
chapter14 = chapter20.chapter14  # the client running, its requests, the loop's lists
COMMANDS = chapter14.COMMANDS

# Whether a connection is still open (server.py's table of clients).
is_connected: Callable[[Any], bool] = lambda conn: True  # noqa: E731


@dataclass(slots=True)
class Pause:
    until: float = 0.0  # time.monotonic(); 0: no pause
    writes_only: bool = False


pause = Pause()
postponed: deque[tuple[Any, list[bytes]]] = deque()  # (connection, its request) held by the pause


def client_pause(args: list[bytes], out: ReplyBuffer) -> None:
    """CLIENT PAUSE milliseconds [WRITE | ALL]"""
    if len(args) > 2:
        out.error("ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.")
        return
    writes_only = False
    if len(args) == 2:
        mode = args[1].lower()
        if mode not in (b"write", b"all"):
            out.error("ERR CLIENT PAUSE mode must be WRITE or ALL")
            return
        writes_only = mode == b"write"
    milliseconds = parse_timeout_ms(args[0], out)
    if milliseconds is None:
        return
    # The new mode replaces the one under way; the later end stands (Redis's pauseClients).
    pause.until = max(time.monotonic() + milliseconds / 1000, pause.until)
    pause.writes_only = writes_only
    out.simple("OK")


def client_unpause(args: list[bytes], out: ReplyBuffer) -> None:
    pause.until = 0.0
    release_postponed()
    out.simple("OK")


def hold_if_paused(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Before a command runs, first of chapter 14's before_call (before a
    transaction would queue it): while paused, hold it and its client."""
    if not pause.until:
        return False
    if time.monotonic() >= pause.until:
        pause.until = 0.0
        return False
    if pause.writes_only and not (spec.writes or "may_replicate" in spec.flags or exec_with_writes(name)):
        return False
    conn = chapter14.current_client
    conn.blocked = True
    postponed.append((conn, [name, *args]))
    return True


def exec_with_writes(name: bytes) -> bool:
    state = chapter18.transactions.get(chapter14.current_client) if name == b"exec" else None
    return state is not None and state.writes


def release_postponed() -> None:
    """Once the pause is over: run each held command again, from the start
    (every check again), then what its client sent meanwhile."""
    while postponed and not pause.until:
        conn, request = postponed.popleft()
        if not is_connected(conn) or conn.closing:
            continue
        conn.blocked = False
        chapter14.current_client = conn
        if COMMANDS.process_command(request, conn.outgoing):
            conn.closing = True
        chapter14.execute_requests(conn)
        chapter14.clients_pending_write[id(conn)] = conn


def end_pause() -> None:
    """Each loop iteration (chapter 14's before_sleep_tasks): a pause that has run out ends."""
    if pause.until and time.monotonic() >= pause.until:
        pause.until = 0.0
    if not pause.until and postponed:
        release_postponed()


def next_pause_end_ms() -> int | None:
    """When the pause ends (chapter 14's timers)."""
    if not pause.until:
        return None
    return max(0, math.ceil((pause.until - time.monotonic()) * 1000))
