"""The rest of Redis's key commands, and SCAN, over a chapter's keyspace.

Introduced in chapter 17 (the full API): RENAME, RENAMENX, COPY, RANDOMKEY,
TOUCH, TIME, and the cursor commands SCAN and ZSCAN. The keyspace is
passed in as `db`, as for common/strings.py (chapter 14's API, plus
`keyspace.scan` and `keyspace.random_node` from common/hashtable.py).

SCAN is the lesson (chapter 17's README): KEYS walks every key at once,
SCAN hands out a cursor and a few keys per call, so a client can walk a
million keys without stopping the server, while keys come and go and the
table resizes between calls (HMap.scan says how the cursor survives that).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any

from common.commands import (
    NOT_AN_INTEGER,
    CommandSpec,
    lookup_typed,
    unknown_subcommand_message,
    write_help,
    wrong_arity_message,
)
from common.glob import compile_glob
from common.resp import parse_integer
from common.resp3 import ReplyBuffer, format_double
from common.zset import ZSet

CURSOR = re.compile(rb"([+-]?)([0-9]*)")
ULONG_MAX = 2**64 - 1
OBJECT_HELP = [
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "HELP",
    "    Prints this help.",
]
NO_LFU = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching "
    "between policies at runtime LRU and LFU data will take some time to adjust."
)
# SCAN visits at most COUNT * this many buckets per call, as Redis: a sparse
# table must not make one call walk it all.
EMPTY_VISITS_PER_KEY = 10


def type_name(value: Any) -> bytes:
    return b"string" if type(value) is bytes else value.type_name


def parse_cursor(text: bytes) -> int | None:
    """A cursor as Redis reads it (strtoul: sign allowed, "-1" wraps around, "" is 0), or None."""
    match = CURSOR.fullmatch(text)
    if match is None or (match.group(1) and not match.group(2)) or len(match.group(2).lstrip(b"0")) > 20:
        return None
    value = int(match.group(2) or b"0")
    if value > ULONG_MAX:
        return None
    return (-value) % 2**64 if match.group(1) == b"-" else value


class KeyCommands:
    """RENAME, RENAMENX, COPY, RANDOMKEY, TOUCH, TIME, SCAN, ZSCAN."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def specs(self) -> dict[bytes, CommandSpec]:
        return {
            b"rename": CommandSpec(self.rename, 3, ("write",), 1, 2, 1),
            b"renamenx": CommandSpec(self.renamenx, 3, ("write", "fast"), 1, 2, 1),
            b"copy": CommandSpec(self.copy, -3, ("write", "denyoom"), 1, 2, 1),
            b"randomkey": CommandSpec(self.randomkey, 1, ("readonly",)),
            b"touch": CommandSpec(self.touch, -2, ("readonly", "fast"), 1, -1, 1),
            b"time": CommandSpec(self.time, 1, ("loading", "stale", "fast")),
            b"object": CommandSpec(self.object_, -2, ()),
            b"scan": CommandSpec(self.scan, -2, ("readonly",)),
            b"zscan": CommandSpec(self.zscan, -3, ("readonly",), 1, 1, 1),
        }

    # --- keys --------------------------------------------------------------------------

    def rename(self, args: list[bytes], out: ReplyBuffer) -> None:
        if self.move(args[0], args[1], out, replace=True):
            out.simple("OK")

    def renamenx(self, args: list[bytes], out: ReplyBuffer) -> None:
        moved = self.move(args[0], args[1], out, replace=False)
        if moved is not None:
            out.integer(1 if moved else 0)

    def move(self, source: bytes, destination: bytes, out: ReplyBuffer, replace: bool) -> bool | None:
        """RENAME's work: True if moved (or the same key), False if NX held it
        back, None after replying an error."""
        entry = self.db.lookup_live(source)
        if entry is None:
            out.error("ERR no such key")
            return None
        if source == destination:
            return replace  # RENAME: OK; RENAMENX: 0
        existing = self.db.lookup_live(destination)
        if existing is not None:
            if not replace:
                return False
            self.db.delete_entry(existing)
        deadline = self.db.deadline_of(source)
        self.db.set_deadline(entry, None)
        self.db.keyspace.pop(source)  # the entry goes, its value stays: it moves
        moved = self.db.add_entry(destination, entry.value)
        if deadline is not None:
            self.db.set_deadline(moved, deadline)
        self.db.notify_keyspace_event("g", "rename_from", source)
        self.db.notify_keyspace_event("g", "rename_to", destination)
        return True

    def copy(self, args: list[bytes], out: ReplyBuffer) -> None:
        """COPY source destination [DB index] [REPLACE]"""
        replace = False
        position = 2
        while position < len(args):
            option = args[position].lower()
            if option == b"replace":
                replace = True
                position += 1
            elif option == b"db" and position + 1 < len(args):
                index = parse_integer(args[position + 1])
                if index is None or not -(2**31) <= index < 2**31:
                    out.error(NOT_AN_INTEGER)
                    return
                if index != 0:  # one database, as a Redis with `databases 1`
                    out.error("ERR DB index is out of range")
                    return
                position += 2
            else:
                out.error("ERR syntax error")
                return
        source, destination = args[0], args[1]
        if source == destination:
            out.error("ERR source and destination objects are the same")
            return
        entry = self.db.lookup_live(source)
        if entry is None:
            out.integer(0)
            return
        existing = self.db.lookup_live(destination)
        if existing is not None:
            if not replace:
                out.integer(0)
                return
            self.db.delete_entry(existing)
        value = entry.value
        if type(value) is not bytes:  # a collection is copied; a string is immutable, shared
            value = value.duplicate()
        copied = self.db.add_entry(destination, value)
        deadline = self.db.deadline_of(source)
        if deadline is not None:
            self.db.set_deadline(copied, deadline)
        self.db.notify_keyspace_event("g", "copy_to", destination)
        out.integer(1)

    def object_(self, args: list[bytes], out: ReplyBuffer) -> None:
        """OBJECT ENCODING key | FREQ key | HELP.

        ENCODING is meaningful for sorted sets, which have two encodings
        here as in Redis (common/zset_listpack.py), reported in Redis's
        names. A string is one Python bytes object, its header and bytes in
        one allocation: what Redis calls embstr, so every string answers
        that (Redis also has int and raw, which we do not). FREQ answers as
        Redis does without an LFU eviction policy, which this server never
        has. IDLETIME and REFCOUNT are not here: we track no access times,
        and Python's reference counts are not Redis's.
        """
        subcommand = args[0].lower()
        if subcommand == b"help" and len(args) == 1:
            write_help(out, "OBJECT", OBJECT_HELP)
        elif subcommand in (b"encoding", b"freq") and len(args) == 2:
            entry = self.db.lookup_live(args[1])
            if entry is None:
                out.null()
            elif subcommand == b"freq":
                out.error(NO_LFU)
            else:
                value = entry.value
                out.bulk(b"embstr" if type(value) is bytes else value.encoding.encode())
        elif subcommand in (b"encoding", b"freq", b"help"):
            out.error(wrong_arity_message(b"object|" + subcommand))
        else:
            out.error(unknown_subcommand_message(args[0], "OBJECT"))

    def randomkey(self, args: list[bytes], out: ReplyBuffer) -> None:
        hidden_tries = 100  # a replica hides expired keys but keeps them: if all are, one is returned, as Redis
        while (entry := self.db.keyspace.random_node(random)) is not None:
            deadline = self.db.deadline_of(entry.key)
            if deadline is None or deadline > self.db.now_ms():
                out.bulk(entry.key)
                return
            if self.db.expired_key_rule() == "delete":
                self.db.delete_entry(entry)  # expired: gone now, as Redis does, and try again
                continue
            hidden_tries -= 1
            if hidden_tries == 0:
                out.bulk(entry.key)
                return
        out.null()

    def touch(self, args: list[bytes], out: ReplyBuffer) -> None:
        out.integer(sum(1 for key in args if self.db.lookup_live(key) is not None))

    def time(self, args: list[bytes], out: ReplyBuffer) -> None:
        now = time.time_ns() // 1000
        out.array(2)
        out.bulk(b"%d" % (now // 1_000_000))
        out.bulk(b"%d" % (now % 1_000_000))

    # --- SCAN and ZSCAN --------------------------------------------------------------------

    def scan(self, args: list[bytes], out: ReplyBuffer) -> None:
        """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]"""
        self.scan_generic(None, args[0], args[1:], out)

    def zscan(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZSCAN key cursor [MATCH pattern] [COUNT count]"""
        self.scan_collection(args, out, ZSet, zset_scan)

    def scan_collection(self, args: list[bytes], out: ReplyBuffer, value_type: type,
                        step: Callable[[Any, int], tuple[list[tuple[bytes, ...]], int]]) -> None:  # fmt: skip
        """ZSCAN, and chapter 20's HSCAN and SSCAN: key cursor [MATCH pattern]
        [COUNT count], over a collection of `value_type`; `step(value,
        cursor)` gives a step's items (each a member and what goes with it)
        and the next cursor."""
        cursor = parse_cursor(args[1])
        if cursor is None:
            out.error("ERR invalid cursor")
            return
        value = lookup_typed(self.db, args[0], value_type, out)
        if value is False:
            return
        if value is None:  # before the options are read, as Redis
            out.array(2)
            out.bulk(b"0")
            out.array(0)
            return
        options = parse_scan_options(args[2:], out, allow_type=False)
        if options is None:
            return
        count, pattern, _ = options
        items, cursor = scan_steps(lambda position: step(value, position), cursor, count)
        if pattern is not None:
            matches = compile_glob(pattern, max((len(item[0]) for item in items), default=0))
            items = [item for item in items if matches(item[0])]
        out.array(2)
        out.bulk(b"%d" % cursor)
        out.array(sum(map(len, items)))
        for item in items:
            for element in item:
                out.bulk(element)

    def scan(self, args: list[bytes], out: ReplyBuffer) -> None:
        """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: Redis's
        scanGenericCommand: options, then a few buckets, then the filters."""
        cursor = parse_cursor(args[0])
        if cursor is None:
            out.error("ERR invalid cursor")
            return
        options = parse_scan_options(args[1:], out, allow_type=True)
        if options is None:
            return
        count, pattern, wanted_type = options
        nodes, cursor = scan_steps(self.db.keyspace.scan, cursor, count)
        if pattern is not None:
            matches = compile_glob(pattern, max((len(node.key) for node in nodes), default=0))
            nodes = [node for node in nodes if matches(node.key)]
        live = []
        now = self.db.now_ms()
        for node in nodes:
            deadline = self.db.deadline_of(node.key)
            if deadline is not None and deadline <= now:
                continue  # expired: not reported (the lazy or active expiry deletes it)
            if wanted_type is not None and type_name(node.value) != wanted_type:
                continue
            live.append(node.key)
        out.array(2)
        out.bulk(b"%d" % cursor)
        out.bulk_array(live)


def parse_scan_options(options: list[bytes], out: ReplyBuffer,
                       allow_type: bool) -> tuple[int, bytes | None, bytes | None] | None:  # fmt: skip
    """SCAN's options: (COUNT, MATCH pattern or None for all, TYPE or
    None), or None after replying Redis's error."""
    count, pattern, wanted_type = 10, None, None
    position = 0
    while position < len(options):
        option = options[position].lower()
        if option == b"count" and position + 1 < len(options):
            count = parse_integer(options[position + 1])
            if count is None:
                out.error(NOT_AN_INTEGER)
                return None
            if count < 1:
                out.error("ERR syntax error")
                return None
        elif option == b"match" and position + 1 < len(options):
            pattern = options[position + 1] if options[position + 1] != b"*" else None
        elif option == b"type" and allow_type and position + 1 < len(options):
            wanted_type = options[position + 1].lower()
        else:
            out.error("ERR syntax error")
            return None
        position += 2
    return count, pattern, wanted_type


def scan_steps(step: Callable[[int], tuple[list[Any], int]], cursor: int, count: int) -> tuple[list[Any], int]:
    """Take steps (a bucket each) until about `count` items are found, the
    walk is over (cursor 0), or too many empty buckets passed."""
    items: list[Any] = []
    visits = count * EMPTY_VISITS_PER_KEY
    while True:
        found, cursor = step(cursor)
        items += found
        visits -= 1
        if not cursor or visits <= 0 or len(items) >= count:
            return items, cursor


def zset_scan(zset: ZSet, cursor: int) -> tuple[list[tuple[bytes, bytes]], int]:
    """One step of ZSCAN: a small (listpack) set whole, with cursor 0, as
    Redis returns a listpack; a large one a bucket of its member table at a time."""
    if zset.encoding == "listpack":
        return [(node.key, format_double(node.score)) for node in zset.nodes()], 0
    nodes, cursor = zset.members.scan(cursor)
    return [(node.key, format_double(node.score)) for node in nodes], cursor
