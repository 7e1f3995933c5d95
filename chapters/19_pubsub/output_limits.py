"""client-output-buffer-limit: what a client that does not read may cost.

Chapter 19's second lesson (server.py is the first). Replies and messages
wait in a client's output buffer until its socket takes them. Chapter 14
bounds what a client's own requests can pile up there: past 1 MB unsent,
it stops executing them. Messages published by others are not bounded so:
a subscriber that stops reading would make the server hold everything
published to it, without end. Redis's answer, rebuilt here, is a limit per
class of client (normal, replica, pubsub), checked whenever output is
added (Redis's checkClientOutputBufferLimits):

* past the hard limit, the client is closed at once;
* past the soft limit, it is closed once it has stayed there for more
  than the limit's seconds (a burst is forgiven, a stall is not).

A client closed so gets no further byte: its output is dropped at once,
which is the point. The settings are Redis's: CONFIG SET
client-output-buffer-limit "pubsub 32mb 8mb 60", or the same option on the
command line.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.config import parse_memory  # noqa: E402
from common.net import log  # noqa: E402
from common.resp import parse_integer  # noqa: E402

chapter14 = load_chapter(14)  # the clients and their output buffers


@dataclass(slots=True)
class OutputLimit:
    """One class's limit: close at `hard` bytes of unsent output, or after
    more than `soft_seconds` above `soft` (0: no such limit)."""

    hard: int
    soft: int
    soft_seconds: int


# Redis 7.0's defaults, in its order. No replica connects yet: its class's
# limit is kept for the chapter that brings replicas.
limits = {
    "normal": OutputLimit(0, 0, 0),
    "slave": OutputLimit(256 * 1024 * 1024, 64 * 1024 * 1024, 60),
    "pubsub": OutputLimit(32 * 1024 * 1024, 8 * 1024 * 1024, 60),
}
CLASS_NAMES = {"normal": "normal", "slave": "slave", "replica": "slave", "pubsub": "pubsub"}
soft_limit_since: dict[Any, float] = {}  # client -> since when it has been past its soft limit
disconnections = 0  # INFO stats: client_output_buffer_limit_disconnections


def limited(client_class: str) -> bool:
    limit = limits.get(client_class)  # none for a class that has no limit (a replica's master, in Redis)
    return limit is not None and bool(limit.hard or limit.soft)


def enforce(conn: Any, client_class: str, counted: int | None = None) -> None:
    """Close `conn` if its unsent output is past its class's limit. Only
    `counted` bytes of it count, if given (a replica's snapshot does not:
    it is not output that grows with the clients' writes)."""
    global disconnections
    limit = limits[client_class]
    size = len(conn.outgoing) if counted is None else counted
    over_hard = limit.hard and size >= limit.hard
    over_soft = False
    if limit.soft and size >= limit.soft:
        since = soft_limit_since.setdefault(conn, time.monotonic())
        over_soft = time.monotonic() - since > limit.soft_seconds
    else:
        soft_limit_since.pop(conn, None)
    if not (over_hard or over_soft):
        return
    log.warning("closing a %s client past its client-output-buffer-limit (%d bytes of output unsent, %s limit)",
                client_class, size, "hard" if over_hard else "soft")  # fmt: skip
    disconnections += 1
    conn.outgoing.clear()  # never sent: the point is to free it now
    conn.closing = True  # closed in before_sleep, its output (now) empty; nothing more is queued for it
    soft_limit_since.pop(conn, None)
    chapter14.clients_pending_write[id(conn)] = conn


def forget(conn: Any) -> None:
    """The client is closed, or changed class: its soft-limit clock stops."""
    soft_limit_since.pop(conn, None)


def limits_text() -> str:
    """CONFIG GET's value, as Redis prints it."""
    return " ".join(f"{name} {limit.hard} {limit.soft} {limit.soft_seconds}" for name, limit in limits.items())


def set_limits(text: bytes) -> str | None:
    """CONFIG SET client-output-buffer-limit "<class> <hard> <soft> <seconds> ...":
    all or nothing, with Redis's errors."""
    words = text.decode(errors="replace").split()
    if len(words) % 4:
        return "Wrong number of arguments in buffer limit configuration."
    changes = {}
    for position in range(0, len(words), 4):
        name = CLASS_NAMES.get(words[position].lower())
        if name is None:
            return "Invalid client class specified in buffer limit configuration."
        hard, soft = parse_memory(words[position + 1]), parse_memory(words[position + 2])
        seconds = parse_integer(words[position + 3].encode())
        if hard is None or soft is None or hard < 0 or soft < 0 or seconds is None or seconds < 0:
            return "Error in hard, soft or soft_seconds setting in buffer limit configuration."
        changes[name] = OutputLimit(hard, soft, seconds)
    limits.update(changes)
    return None
