"""Redis's TTL commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL,
EXPIRETIME, PEXPIRETIME and PERSIST, over a keyspace whose keys may expire.

Introduced in chapter 13 (keys with a TTL), whose lesson is how a deadline
is kept (an Expiry beside the entry, a heap of them, lazy and active
expiration: the chapter's server.py); these commands read and set
deadlines through it, and chapter 14 uses them unchanged. Deadlines are
Unix times in milliseconds, as PEXPIRETIME shows them.

    TTLS = TtlCommands(lookup_live, delete_entry, deadline_of, set_deadline)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common.commands import NOT_AN_INTEGER, CommandSpec
from common.resp import parse_integer
from common.resp3 import ReplyBuffer

LLONG_MAX = 2**63 - 1  # deadlines are C long longs of milliseconds in Redis


def now_ms() -> int:
    """Unix time in milliseconds: TTLs are wall-clock times, as EXPIREAT shows."""
    return time.time_ns() // 1_000_000


class TtlCommands:
    """The TTL commands, on a keyspace reached through `lookup` (a live
    entry or None), `delete`, `deadline_of` (a key's deadline, None without
    one) and `set_deadline` (None removes it); each change is told to
    `notify` (class, event, key), as Redis's notifyKeyspaceEvent."""

    def __init__(self, lookup: Callable[[bytes], Any], delete: Callable[[Any], None],
                 deadline_of: Callable[[bytes], int | None],
                 set_deadline: Callable[[Any, int | None], None],
                 notify: Callable[[str, str, bytes], None] = lambda kind, event, key: None) -> None:  # fmt: skip
        self.lookup, self.delete = lookup, delete
        self.deadline_of, self.set_deadline = deadline_of, set_deadline
        self.notify = notify

    def specs(self) -> dict[bytes, CommandSpec]:
        return {
            b"expire": CommandSpec(self.expire, -3, ("write", "fast"), 1, 1, 1),
            b"pexpire": CommandSpec(self.pexpire, -3, ("write", "fast"), 1, 1, 1),
            b"expireat": CommandSpec(self.expireat, -3, ("write", "fast"), 1, 1, 1),
            b"pexpireat": CommandSpec(self.pexpireat, -3, ("write", "fast"), 1, 1, 1),
            b"ttl": CommandSpec(self.ttl, 2, ("readonly", "fast"), 1, 1, 1),
            b"pttl": CommandSpec(self.pttl, 2, ("readonly", "fast"), 1, 1, 1),
            b"expiretime": CommandSpec(self.expiretime, 2, ("readonly", "fast"), 1, 1, 1),
            b"pexpiretime": CommandSpec(self.pexpiretime, 2, ("readonly", "fast"), 1, 1, 1),
            b"persist": CommandSpec(self.persist, 2, ("write", "fast"), 1, 1, 1),
        }

    def expire(self, args: list[bytes], out: ReplyBuffer) -> None:
        """EXPIRE key seconds [NX | XX | GT | LT]"""
        self.expire_generic(args, out, b"expire", unit_ms=1000, relative=True)

    def pexpire(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.expire_generic(args, out, b"pexpire", unit_ms=1, relative=True)

    def expireat(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.expire_generic(args, out, b"expireat", unit_ms=1000, relative=False)

    def pexpireat(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.expire_generic(args, out, b"pexpireat", unit_ms=1, relative=False)

    def expire_generic(self, args: list[bytes], out: ReplyBuffer, name: bytes, unit_ms: int, relative: bool) -> None:
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
        entry = self.lookup(args[0])
        if entry is None:
            out.integer(0)
            return
        current = self.deadline_of(entry.key)  # None: no TTL, i.e. infinite
        if (
            (b"nx" in flags and current is not None)
            or (b"xx" in flags and current is None)
            or (b"gt" in flags and (current is None or deadline <= current))
            or (b"lt" in flags and current is not None and deadline >= current)
        ):
            out.integer(0)
            return
        if deadline <= now_ms():
            self.delete(entry)
            self.notify("g", "del", entry.key)
        else:
            self.set_deadline(entry, deadline)
            self.notify("g", "expire", entry.key)
        out.integer(1)

    def ttl(self, args: list[bytes], out: ReplyBuffer) -> None:
        """Seconds left (rounded), -1 for a key without TTL, -2 for no key."""
        remaining = self.remaining_ms(args[0])
        out.integer(remaining if remaining < 0 else (remaining + 500) // 1000)

    def pttl(self, args: list[bytes], out: ReplyBuffer) -> None:
        out.integer(self.remaining_ms(args[0]))

    def remaining_ms(self, key: bytes) -> int:
        entry = self.lookup(key)
        if entry is None:
            return -2
        deadline = self.deadline_of(key)
        return -1 if deadline is None else max(deadline - now_ms(), 0)

    def expiretime(self, args: list[bytes], out: ReplyBuffer) -> None:
        """The deadline as a Unix time in seconds, -1 without TTL, -2 for no key."""
        deadline = self.deadline_ms(args[0])
        out.integer(deadline if deadline < 0 else deadline // 1000)

    def pexpiretime(self, args: list[bytes], out: ReplyBuffer) -> None:
        out.integer(self.deadline_ms(args[0]))

    def deadline_ms(self, key: bytes) -> int:
        entry = self.lookup(key)
        if entry is None:
            return -2
        deadline = self.deadline_of(key)
        return -1 if deadline is None else deadline

    def persist(self, args: list[bytes], out: ReplyBuffer) -> None:
        """Remove a key's TTL: 1 if it had one, else 0."""
        entry = self.lookup(args[0])
        if entry is None or self.deadline_of(entry.key) is None:
            out.integer(0)
            return
        self.set_deadline(entry, None)
        self.notify("g", "persist", entry.key)
        out.integer(1)
