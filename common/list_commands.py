"""Redis's list commands (its t_list.c), on common/quicklist.py.

Introduced in chapter 20 (lists, hashes and sets). A list is a queue or
a stack: LPUSH/RPUSH at either end, LPOP/RPOP (with a count), LMOVE from
one list's end to another's (a reliable queue's hand-over), and a few
commands by index (LINDEX, LSET, LRANGE, LTRIM, LINSERT, LREM, LPOS) that
walk the quicklist's nodes. The blocking forms (BLPOP, BRPOP, BLMOVE,
BRPOPLPUSH, BLMPOP) are chapter 20's lesson and live there; they pop with
`pop_reply` and `move` below.

A family works on a chapter's keyspace `db` (chapter 14's module): its
lookup_live, add_entry, delete_entry and notify_keyspace_event, as
common/keys.py's does. An empty list is no key at all: the command that
empties one deletes it, as Redis does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.commands import NOT_AN_INTEGER, CommandSpec, delete_if_empty, lookup_or_reply, lookup_typed, parse_count
from common.quicklist import QuickList
from common.resp import parse_integer
from common.resp3 import ReplyBuffer
from common.zset_commands import keys_after_numkeys, parse_mpop

SYNTAX_ERROR = "ERR syntax error"


def parse_side(text: bytes) -> bool | None:
    """LEFT (the head: True) or RIGHT (the tail: False), any case; None if neither."""
    side = text.lower()
    return True if side == b"left" else False if side == b"right" else None


def parse_lmpop(args: list[bytes], out: ReplyBuffer) -> tuple[list[bytes], bool, int] | None:
    """LMPOP's (and BLMPOP's) numkeys key [key ...] LEFT|RIGHT [COUNT count]:
    (keys, from the head, count), or None after replying Redis's error."""
    return parse_mpop(args, out, sides=(b"right", b"left"))


class ListCommands:
    """LPUSH, RPUSH, LPOP, RPOP, LRANGE and the rest of Redis 7.0's non-blocking list commands."""

    def __init__(self, db: Any) -> None:
        self.db = db
        # What replays this command's change, in its place (LMPOP's LPOP or RPOP), as common/set_commands.py's.
        self.log_as: Callable[[list[list[bytes]]], None] = lambda commands: None

    def specs(self) -> dict[bytes, CommandSpec]:
        push = ("write", "denyoom", "fast")
        return {
            b"lpush": CommandSpec(self.lpush, -3, push, 1, 1, 1),
            b"rpush": CommandSpec(self.rpush, -3, push, 1, 1, 1),
            b"lpushx": CommandSpec(self.lpushx, -3, push, 1, 1, 1),
            b"rpushx": CommandSpec(self.rpushx, -3, push, 1, 1, 1),
            b"lpop": CommandSpec(self.lpop, -2, ("write", "fast"), 1, 1, 1),
            b"rpop": CommandSpec(self.rpop, -2, ("write", "fast"), 1, 1, 1),
            b"lmpop": CommandSpec(self.lmpop, -4, ("write",), find_keys=keys_after_numkeys(0)),
            b"llen": CommandSpec(self.llen, 2, ("readonly", "fast"), 1, 1, 1),
            b"lindex": CommandSpec(self.lindex, 3, ("readonly",), 1, 1, 1),
            b"lset": CommandSpec(self.lset, 4, ("write", "denyoom"), 1, 1, 1),
            b"lrange": CommandSpec(self.lrange, 4, ("readonly",), 1, 1, 1),
            b"ltrim": CommandSpec(self.ltrim, 4, ("write",), 1, 1, 1),
            b"linsert": CommandSpec(self.linsert, 5, ("write", "denyoom"), 1, 1, 1),
            b"lrem": CommandSpec(self.lrem, 4, ("write",), 1, 1, 1),
            b"lpos": CommandSpec(self.lpos, -3, ("readonly",), 1, 1, 1),
            b"lmove": CommandSpec(self.lmove, 5, ("write", "denyoom"), 1, 2, 1),
            b"rpoplpush": CommandSpec(self.rpoplpush, 3, ("write", "denyoom"), 1, 2, 1),
        }

    def lookup_list(self, key: bytes, out: ReplyBuffer) -> QuickList | None | bool:
        return lookup_typed(self.db, key, QuickList, out)

    def new_list(self, key: bytes) -> QuickList:
        """A new, empty list at `key` (Redis's createQuicklistObject and dbAdd)."""
        quicklist = QuickList()
        self.db.add_entry(key, quicklist)
        return quicklist

    # --- the ends ----------------------------------------------------------------------

    def lpush(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.push(args, out, head=True, only_existing=False)

    def rpush(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.push(args, out, head=False, only_existing=False)

    def lpushx(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.push(args, out, head=True, only_existing=True)

    def rpushx(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.push(args, out, head=False, only_existing=True)

    def push(self, args: list[bytes], out: ReplyBuffer, head: bool, only_existing: bool) -> None:
        key = args[0]
        quicklist = self.lookup_list(key, out)
        if quicklist is False:
            return
        if quicklist is None:
            if only_existing:
                out.integer(0)
                return
            quicklist = self.new_list(key)
        for item in args[1:]:
            quicklist.push(item, head)
        out.integer(len(quicklist))
        self.db.notify_keyspace_event("l", "lpush" if head else "rpush", key)

    def lpop(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.pop_command(args, out, head=True)

    def rpop(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.pop_command(args, out, head=False)

    def pop_command(self, args: list[bytes], out: ReplyBuffer, head: bool) -> None:
        """LPOP/RPOP key [count]: one element (a bulk), or up to count (an array)."""
        if len(args) > 2:
            out.error(f"ERR wrong number of arguments for '{'lpop' if head else 'rpop'}' command")
            return
        count = None
        if len(args) == 2 and (count := parse_count(args[1], out)) is None:
            return
        quicklist = self.lookup_list(args[0], out)
        if quicklist is False:
            return
        if quicklist is None:
            out.null() if count is None else out.null_array()
            return
        if count == 0:
            out.array(0)
            return
        if count is None:
            out.bulk(quicklist.pop(head))
            self.removed(args[0], quicklist, head)
        else:
            self.pop_reply(args[0], quicklist, head, count, out, with_key=False)

    def pop_reply(self, key: bytes, quicklist: QuickList, head: bool, count: int, out: ReplyBuffer,
                  with_key: bool) -> int:  # fmt: skip
        """Pop up to `count` elements from one end and reply them as an
        array ([key, [elements]] `with_key`, for LMPOP); how many were popped."""
        taken = min(count, len(quicklist))
        if with_key:
            out.array(2)
            out.bulk(key)
        out.array(taken)
        for _ in range(taken):
            out.bulk(quicklist.pop(head))
        self.removed(key, quicklist, head)
        return taken

    def removed(self, key: bytes, quicklist: QuickList, head: bool) -> None:
        """After elements were popped: the event, and the key gone if the list is empty."""
        self.db.notify_keyspace_event("l", "lpop" if head else "rpop", key)
        delete_if_empty(self.db, key, quicklist)

    def lmpop(self, args: list[bytes], out: ReplyBuffer) -> None:
        """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]"""
        parsed = parse_lmpop(args, out)
        if parsed is None:
            return
        keys, head, count = parsed
        found = self.first_nonempty(keys, out)
        if found is False:
            return
        if found is None:
            out.null_array()
            return
        taken = self.pop_reply(found[0], found[1], head, count, out, with_key=True)
        self.log_as([[b"LPOP" if head else b"RPOP", found[0], b"%d" % taken]])  # as Redis propagates it

    def first_nonempty(self, keys: list[bytes], out: ReplyBuffer) -> tuple[bytes, QuickList] | None | bool:
        """The first of `keys` that holds a list; None if none does; False
        after replying WRONGTYPE for a key before it that holds something else."""
        for key in keys:
            quicklist = self.lookup_list(key, out)
            if quicklist is False:
                return False
            if quicklist:
                return key, quicklist
        return None

    # --- moving between lists -------------------------------------------------------------

    def lmove(self, args: list[bytes], out: ReplyBuffer) -> None:
        """LMOVE source destination LEFT|RIGHT LEFT|RIGHT"""
        from_head, to_head = parse_side(args[2]), parse_side(args[3])
        if from_head is None or to_head is None:
            out.error(SYNTAX_ERROR)
            return
        self.move_command(args[0], args[1], from_head, to_head, out)

    def rpoplpush(self, args: list[bytes], out: ReplyBuffer) -> None:
        """RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT."""
        self.move_command(args[0], args[1], from_head=False, to_head=True, out=out)

    def move_command(self, source: bytes, destination: bytes, from_head: bool, to_head: bool,
                     out: ReplyBuffer) -> None:  # fmt: skip
        quicklist = lookup_or_reply(self.db, source, QuickList, out, out.null)
        if quicklist is not None:
            self.move(source, quicklist, destination, from_head, to_head, out)

    def move(self, source: bytes, quicklist: QuickList, destination: bytes, from_head: bool, to_head: bool,
             out: ReplyBuffer) -> bool:  # fmt: skip
        """Move one element from the list at `source` to `destination`'s
        end and reply it (Redis's lmoveGenericCommand); False, after
        replying WRONGTYPE, if `destination` holds something else."""
        target = self.lookup_list(destination, out)
        if target is False:
            return False
        item = quicklist.pop(from_head)
        if target is None:
            target = self.new_list(destination)
        target.push(item, to_head)
        self.db.notify_keyspace_event("l", "lpush" if to_head else "rpush", destination)
        out.bulk(item)
        self.removed(source, quicklist, from_head)
        return True

    # --- by index ------------------------------------------------------------------------

    def llen(self, args: list[bytes], out: ReplyBuffer) -> None:
        quicklist = self.lookup_list(args[0], out)
        if quicklist is not False:
            out.integer(len(quicklist) if quicklist else 0)

    def lindex(self, args: list[bytes], out: ReplyBuffer) -> None:
        quicklist = lookup_or_reply(self.db, args[0], QuickList, out, out.null)
        if quicklist is None:
            return
        index = parse_integer(args[1])
        if index is None:
            out.error(NOT_AN_INTEGER)
            return
        item = quicklist.get(index)
        out.null() if item is None else out.bulk(item)

    def lset(self, args: list[bytes], out: ReplyBuffer) -> None:
        quicklist = lookup_or_reply(self.db, args[0], QuickList, out, lambda: out.error("ERR no such key"))
        if quicklist is None:
            return
        index = parse_integer(args[1])
        if index is None:
            out.error(NOT_AN_INTEGER)
        elif not quicklist.replace(index, args[2]):
            out.error("ERR index out of range")
        else:
            out.simple("OK")
            self.db.notify_keyspace_event("l", "lset", args[0])

    def lrange(self, args: list[bytes], out: ReplyBuffer) -> None:
        start, stop = parse_integer(args[1]), parse_integer(args[2])
        if start is None or stop is None:
            out.error(NOT_AN_INTEGER)
            return
        quicklist = self.lookup_list(args[0], out)
        if quicklist is not False:
            out.bulk_array(quicklist.range(start, stop) if quicklist else [])

    def ltrim(self, args: list[bytes], out: ReplyBuffer) -> None:
        start, stop = parse_integer(args[1]), parse_integer(args[2])
        if start is None or stop is None:
            out.error(NOT_AN_INTEGER)
            return
        quicklist = self.lookup_list(args[0], out)
        if quicklist is False:
            return
        if quicklist is not None:
            quicklist.trim(start, stop)
            self.db.notify_keyspace_event("l", "ltrim", args[0])
            delete_if_empty(self.db, args[0], quicklist)
        out.simple("OK")

    def linsert(self, args: list[bytes], out: ReplyBuffer) -> None:
        """LINSERT key BEFORE|AFTER pivot element: -1 if no pivot, 0 if no key."""
        where = args[1].lower()
        if where not in (b"before", b"after"):
            out.error(SYNTAX_ERROR)
            return
        quicklist = lookup_or_reply(self.db, args[0], QuickList, out, lambda: out.integer(0))
        if quicklist is None:
            return
        position = quicklist.index_of(args[2])
        if position < 0:
            out.integer(-1)
            return
        quicklist.insert_at(position + (where == b"after"), args[3])
        self.db.notify_keyspace_event("l", "linsert", args[0])
        out.integer(len(quicklist))

    def lrem(self, args: list[bytes], out: ReplyBuffer) -> None:
        """LREM key count element: count > 0 from the head, < 0 from the tail, 0 all."""
        count = parse_integer(args[1])
        if count is None:
            out.error(NOT_AN_INTEGER)
            return
        quicklist = lookup_or_reply(self.db, args[0], QuickList, out, lambda: out.integer(0))
        if quicklist is None:
            return
        removed = quicklist.remove(args[2], count)
        if removed:
            self.db.notify_keyspace_event("l", "lrem", args[0])
            delete_if_empty(self.db, args[0], quicklist)
        out.integer(removed)

    def lpos(self, args: list[bytes], out: ReplyBuffer) -> None:
        """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]"""
        rank, count, maxlen = 1, None, 0
        position = 2
        while position < len(args):
            option = args[position].lower()
            if position + 1 >= len(args) or option not in (b"rank", b"count", b"maxlen"):
                out.error(SYNTAX_ERROR)
                return
            value = parse_integer(args[position + 1])
            if option == b"rank":
                if value is None:
                    out.error(NOT_AN_INTEGER)
                    return
                if value == 0:
                    out.error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
                              "or use negative to start from the end of the list")  # fmt: skip
                    return
                rank = value
            elif value is None or value < 0:  # one text for both, as Redis's
                out.error(f"ERR {option.decode().upper()} can't be negative")
                return
            elif option == b"count":
                count = value
            else:
                maxlen = value
            position += 2
        quicklist = self.lookup_list(args[0], out)
        if quicklist is False:
            return
        if quicklist is None:
            out.array(0) if count is not None else out.null()
            return
        reverse = rank < 0
        skip = abs(rank) - 1  # matches to pass before the first one reported
        length = len(quicklist)
        found = []
        for scanned, item in enumerate(quicklist.items(length - 1 if reverse else 0, reverse)):
            if maxlen and scanned >= maxlen:
                break
            if item != args[1]:
                continue
            if skip:
                skip -= 1
                continue
            found.append(length - 1 - scanned if reverse else scanned)
            if count is None or (count and len(found) >= count):
                break
        if count is None:
            out.integer(found[0]) if found else out.null()
        else:
            out.array(len(found))
            for index in found:
                out.integer(index)
