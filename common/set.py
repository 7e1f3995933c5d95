"""A Redis set (unordered, distinct members), in its two encodings.

Introduced in chapter 20 (lists, hashes and sets). Sets of ids are
common: the users who liked a post, the tags of an item. While every
member is an integer Redis keeps them as an intset: a sorted array of
fixed-width integers, searched by bisection, with no per-member object at
all (8 bytes a member here, 2 to 8 in Redis). The first member that is not
an integer, or the member past `set-max-intset-entries` (512), converts
the set into a hashtable, once and for good (OBJECT ENCODING answers
"intset" or "hashtable"; Redis 7.0 has no listpack sets).

The intset here is an array('q') of 64-bit integers, searched with the
bisect module (in C). An intset's members come back in numeric order,
which SMEMBERS shows, as Redis's do. The hashtable is chapter 08's
(common/hashtable.py), so that SSCAN's cursor survives its resizing and
SRANDMEMBER picks a random bucket, as Redis does.
"""

from __future__ import annotations

import random
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from common.hashtable import HMap, HNode

# What Redis's string2ll accepts, and so what an intset may hold: no sign
# but '-', no leading zero, no "-0".
CANONICAL_INTEGER = re.compile(rb"-?[1-9][0-9]{0,18}|0")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def as_integer(member: bytes) -> int | None:
    """The member as an intset holds it, or None if it is not an integer
    written the one way Redis writes it (so that it reads back the same)."""
    if CANONICAL_INTEGER.fullmatch(member) is None:
        return None
    value = int(member)
    return value if INT64_MIN <= value <= INT64_MAX else None


class RedisSet:
    """Distinct members, an intset while they are few integers, a hashtable after."""

    __slots__ = ("ints", "table")
    type_name = b"set"  # TYPE; the shape chapter 14 expects of a value (see common/zset.py)
    max_intset_entries = 512  # set-max-intset-entries

    def __init__(self, members: Iterable[bytes] = ()) -> None:
        self.ints: array | None = array("q")
        self.table: HMap | None = None
        for member in members:
            self.add(member)

    @property
    def encoding(self) -> str:
        return "intset" if self.ints is not None else "hashtable"

    def __len__(self) -> int:
        return len(self.ints) if self.ints is not None else len(self.table)

    def convert(self) -> None:
        """Move every member into a hashtable (Redis's setTypeConvert)."""
        table = HMap()
        for value in self.ints:
            table.insert(HNode(b"%d" % value))
        self.table, self.ints = table, None

    def __contains__(self, member: bytes) -> bool:
        if self.ints is not None:
            value = as_integer(member)
            if value is None:
                return False
            index = bisect_left(self.ints, value)
            return index < len(self.ints) and self.ints[index] == value
        return self.table.lookup(member) is not None

    def add(self, member: bytes) -> bool:
        """Add a member; True if it was not there."""
        if self.ints is not None:
            value = as_integer(member)
            if value is not None:
                index = bisect_left(self.ints, value)
                if index < len(self.ints) and self.ints[index] == value:
                    return False
                self.ints.insert(index, value)
                if len(self.ints) > self.max_intset_entries:
                    self.convert()
                return True
            self.convert()
        if self.table.lookup(member) is not None:
            return False
        self.table.insert(HNode(member))
        return True

    def remove(self, member: bytes) -> bool:
        if self.ints is not None:
            value = as_integer(member)
            if value is None:
                return False
            index = bisect_left(self.ints, value)
            if index < len(self.ints) and self.ints[index] == value:
                del self.ints[index]
                return True
            return False
        return self.table.pop(member) is not None

    def __iter__(self) -> Iterator[bytes]:
        if self.ints is not None:
            for value in self.ints:
                yield b"%d" % value
        else:
            for node in self.table:
                yield node.key

    def random_member(self, rng: random.Random) -> bytes:
        """A member picked at random (the set is not empty)."""
        if self.ints is not None:
            return b"%d" % self.ints[rng.randrange(len(self.ints))]
        return self.table.fair_random_node(rng).key

    def scan(self, cursor: int) -> tuple[list[tuple[bytes]], int]:
        """One step of SSCAN (each member alone in its item): an intset
        whole, with cursor 0, as Redis; a hashtable a bucket at a time."""
        if self.ints is not None:
            return [(member,) for member in self], 0
        nodes, cursor = self.table.scan(cursor)
        return [(node.key,) for node in nodes], cursor

    # --- the shape of a value (chapter 14, COPY, the persistence chapter) --------------

    def duplicate(self) -> RedisSet:
        """A copy in the same encoding, as Redis's setTypeDup."""
        copy = RedisSet()
        if self.ints is not None:
            copy.ints = array("q", self.ints)
        else:
            copy.convert()
            for member in self:
                copy.table.insert(HNode(member))
        return copy

    def clear(self) -> None:
        self.ints, self.table = array("q"), None

    def dismantle(self) -> Iterator[bytes]:
        """Give the members up one at a time (chapter 14 frees a large set on its worker)."""
        if self.table is not None:
            yield from (node.key for node in self.table.drain())
        self.clear()
