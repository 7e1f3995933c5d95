"""Small sorted sets kept flat: Redis's listpack encoding.

Introduced in chapter 17 (beyond the book). Chapter 11's ZSet indexes
every member twice, in a hashtable and an AVL tree: one node object with
eight slots per member, and a table slot. For a set of ten members that
index costs more than the members do, and most sorted sets in real use
are small. Redis therefore keeps a small sorted set as a listpack: one
flat, sorted run of (member, score) pairs, searched linearly, and
converts it to its indexed form (a skiplist and a dict; here chapter 11's
ZSet) once it holds more than zset-max-listpack-entries members (128) or
a member longer than zset-max-listpack-value bytes (64). Linear work on
128 entries costs about what a tree's pointer chasing does, and the
memory is a fraction.

Our listpack is two arrays kept in (score, member) order: a list of the
members, and an array of their scores as C doubles (8 bytes each, where
a Python float is a 24-byte object). A member lookup is `list.index`, a
C loop; an order lookup is a binary search (bisect) on the scores, then
on the members among equal scores. Inserting or deleting moves the tail
of the arrays, at most 128 entries.

`ListpackZSet` is a ZSet: while small it answers from its two arrays and
its `members` and `root` are None; `convert` then builds the indexed form
in place, after which every method is chapter 11's. Callers keep one
object throughout, as Redis keeps the same robj and changes its
encoding. A set never converts back, as in Redis. (Redis also
flattens a stored result that ends small, ZUNIONSTORE's and the like;
ours are built by adding members, flat until they outgrow it, so they
end in the encoding Redis would give them.)

The nodes a small set hands out (`ListpackNode`) are made on demand: a
member and its score at that moment, valid until the set next changes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator

from common.hashtable import HMap
from common.zset import ZNode, ZSet

# Redis's defaults; CONFIG SET zset-max-listpack-entries / -value change them.
MAX_ENTRIES = 128
MAX_VALUE = 64
# The most zset-max-listpack-entries may be set to. Every write to a flat
# set moves up to that many entries and a lookup scans them, so a client
# allowed any count (Redis allows any) could make each write cost
# milliseconds; at this cap a write stays in the tens of microseconds.
MAX_FLAT_ENTRIES = 8192


class ListpackNode:
    """A member of a small set and its score, as a ZNode answers them."""

    __slots__ = ("key", "score")

    def __init__(self, member: bytes, score: float) -> None:
        self.key = member
        self.score = score


class ListpackZSet(ZSet):
    """A sorted set that is flat while small and chapter 11's ZSet after.

    The thresholds are class attributes, so that CONFIG SET changes them for
    every set at once, as in Redis; they are checked when a member is added.
    """

    __slots__ = ("flat_members", "flat_scores")

    max_entries = MAX_ENTRIES
    max_value = MAX_VALUE

    def __init__(self) -> None:
        # Not ZSet.__init__: a small set has no hashtable and no tree yet.
        self.members: HMap | None = None  # type: ignore[assignment]
        self.root = None
        self.flat_members: list[bytes] | None = []
        self.flat_scores: array[float] | None = array("d")  # 8 bytes a score, not a float object

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """OBJECT ENCODING's answer, in Redis's names for the two forms."""
        return "listpack" if self.flat_members is not None else "skiplist"

    @classmethod
    def fits(cls, length: int, longest_member: int) -> bool:
        """Whether a set this long, whose longest member is this long, is kept flat."""
        return length <= cls.max_entries and longest_member <= cls.max_value

    def duplicate(self) -> ListpackZSet:
        """A copy in the same encoding, as Redis's zsetDup: a set that was
        converted stays converted, whatever its length now."""
        copy = ListpackZSet()
        if self.flat_members is None:
            copy.convert()
        for node in self.nodes():
            copy.add(node.key, node.score)
        return copy

    def convert(self) -> None:
        """Build the indexed form from the flat arrays: Redis's zsetConvert."""
        members, scores = self.flat_members, self.flat_scores
        assert members is not None and scores is not None
        self.flat_members = self.flat_scores = None
        self.members = HMap()
        for member, score in zip(members, scores):
            ZSet.add(self, member, score)

    # --- the flat arrays --------------------------------------------------------------

    def _index(self, score: float, member: bytes) -> int:
        """Where (score, member) is, or would be inserted, in the flat arrays."""
        scores = self.flat_scores
        low = bisect_left(scores, score)  # type: ignore[arg-type]
        high = bisect_right(scores, score, low)  # type: ignore[arg-type]
        return bisect_left(self.flat_members, member, low, high)  # type: ignore[arg-type]

    def _node(self, index: int) -> ListpackNode:
        return ListpackNode(self.flat_members[index], self.flat_scores[index])  # type: ignore[index]

    # --- ZSet's interface ------------------------------------------------------------------

    def __len__(self) -> int:
        if self.flat_members is None:
            return len(self.members)
        return len(self.flat_members)

    def lookup(self, member: bytes) -> ZNode | ListpackNode | None:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.lookup(self, member)
        try:
            index = self.flat_members.index(member)
        except ValueError:
            return None
        return self._node(index)

    def add(self, member: bytes, score: float) -> ZNode | ListpackNode:  # type: ignore[override]
        if self.flat_members is not None:
            if self.fits(len(self.flat_members) + 1, len(member)):
                index = self._index(score, member)
                self.flat_members.insert(index, member)
                self.flat_scores.insert(index, score)  # type: ignore[union-attr]
                return self._node(index)
            self.convert()
        return ZSet.add(self, member, score)

    def update(self, node: ZNode | ListpackNode, score: float) -> None:  # type: ignore[override]
        if self.flat_members is None:
            ZSet.update(self, node, score)  # type: ignore[arg-type]
            return
        if score == node.score:
            return
        self.delete(node)
        self.add(node.key, score)
        node.score = score

    def delete(self, node: ZNode | ListpackNode) -> None:  # type: ignore[override]
        if self.flat_members is None:
            ZSet.delete(self, node)  # type: ignore[arg-type]
            return
        index = self._index(node.score, node.key)
        del self.flat_members[index]
        del self.flat_scores[index]  # type: ignore[union-attr]

    def rank(self, node: ZNode | ListpackNode) -> int:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.rank(self, node)  # type: ignore[arg-type]
        return self._index(node.score, node.key)

    def at(self, rank: int) -> ZNode | ListpackNode | None:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.at(self, rank)
        return self._node(rank) if 0 <= rank < len(self.flat_members) else None

    def offset(self, node: ZNode | ListpackNode, offset: int) -> ZNode | ListpackNode | None:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.offset(self, node, offset)  # type: ignore[arg-type]
        return self.at(self._index(node.score, node.key) + offset)

    def first(self) -> ZNode | ListpackNode | None:  # type: ignore[override]
        return self.at(0) if self.flat_members is not None else ZSet.first(self)

    def last(self) -> ZNode | ListpackNode | None:  # type: ignore[override]
        return self.at(len(self.flat_members) - 1) if self.flat_members is not None else ZSet.last(self)

    def seek_ge(self, score: float, member: bytes) -> ZNode | ListpackNode | None:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.seek_ge(self, score, member)
        return self.at(self._index(score, member))

    def first_in_range(self, low: float, exclusive: bool) -> ZNode | ListpackNode | None:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.first_in_range(self, low, exclusive)
        return self.at((bisect_right if exclusive else bisect_left)(self.flat_scores, low))  # type: ignore[arg-type]

    def last_in_range(self, high: float, exclusive: bool) -> ZNode | ListpackNode | None:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.last_in_range(self, high, exclusive)
        return self.at((bisect_left if exclusive else bisect_right)(self.flat_scores, high) - 1)  # type: ignore[arg-type]

    def where(self, condition: Callable[[bytes], bool], last: bool = False) -> ZNode | ListpackNode | None:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.where(self, condition, last)
        indexes = range(len(self.flat_members) - 1, -1, -1) if last else range(len(self.flat_members))
        return next((self._node(index) for index in indexes if condition(self.flat_members[index])), None)

    def walk(self, node: ZNode | ListpackNode | None, count: int, step: int = 1) -> Iterator[ZNode | ListpackNode]:  # type: ignore[override]
        if self.flat_members is None:
            yield from ZSet.walk(node, count, step)  # type: ignore[arg-type]
            return
        if node is None:
            return
        index = self._index(node.score, node.key)
        stop = min(len(self.flat_members), index + count) if step > 0 else max(-1, index - count)
        for position in range(index, stop, step):
            yield self._node(position)

    def nodes(self) -> Iterator[ZNode | ListpackNode]:  # type: ignore[override]
        if self.flat_members is None:
            return ZSet.nodes(self)
        return map(ListpackNode, self.flat_members, self.flat_scores)  # type: ignore[arg-type]

    def dismantle(self) -> Iterator[ZNode]:
        if self.flat_members is not None:
            self.flat_members, self.flat_scores = [], array("d")  # no cycles to cut: plain arrays
            return iter(())
        return ZSet.dismantle(self)
