"""A sorted set: members with scores, indexed twice on the same node objects.

Introduced in chapter 11 (Sorted Set). A sorted set must answer two kinds
of question fast:

* by member: "what is alice's score?" -> a hashtable (common/hashtable.py)
* by order:  "who ranks 100th?", "who scores between 10 and 20?"
  -> an AVL tree ordered by (score, member) (common/avl.py)

Both indexes hold the same `ZNode` objects: each node is at once a
hashtable entry (key, hnext) and an AVL node (left, right, parent,
height, count), as the book does with two intrusive links in one struct.
A member costs one object, and finding a node by member also finds its
place in the order.

Ordering is by score, then by member bytes, as in Redis, so members with
equal scores come out in lexicographic order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from common.avl import (
    AVLNode,
    avl_attach,
    avl_delete,
    avl_dismantle,
    avl_first,
    avl_last,
    avl_next,
    avl_offset,
    avl_prev,
    avl_rank,
)
from common.hashtable import HMap


class ZNode(AVLNode):
    """One member of a sorted set: an AVL node that is also a hashtable node.

    The hashtable's slots (key, hnext) are declared here rather than
    inherited from HNode, because Python allows only one base with slots.
    `key` is the member.
    """

    __slots__ = ("key", "hnext", "score")

    def __init__(self, member: bytes, score: float) -> None:
        super().__init__()
        self.key = member
        self.hnext: ZNode | None = None
        self.score = score


class ZSet:
    """A sorted set of bytes members with float scores (never NaN).

    Lookups by member are O(1); insertion, deletion, score updates, rank
    and positional access are O(log n); a range of k members costs
    O(log n + k).
    """

    __slots__ = ("members", "root")
    # A keyspace value is bytes (a string) or a collection like this one,
    # which says what TYPE and OBJECT ENCODING answer for it, its length,
    # how COPY duplicates it and how it is dismantled (chapter 14 frees a
    # big one on its worker): chapter 14 and the persistence chapter go by
    # these, whatever the type.
    type_name = b"zset"
    # OBJECT ENCODING's name for this form, Redis's for its indexed sorted
    # set. Chapter 17's small sets have a second form (common/zset_listpack.py).
    encoding = "skiplist"

    def __init__(self) -> None:
        self.members = HMap()  # member -> ZNode
        self.root: ZNode | None = None  # the AVL tree, by (score, member)

    def __len__(self) -> int:
        return len(self.members)

    def lookup(self, member: bytes) -> ZNode | None:
        return self.members.lookup(member)

    def add(self, member: bytes, score: float) -> ZNode:
        """Insert a new member (the caller has checked it is absent)."""
        node = ZNode(member, score)
        self.members.insert(node)
        self._tree_insert(node)
        return node

    def update(self, node: ZNode, score: float) -> None:
        """Give a member a new score: out of the tree, and back in at its new place."""
        if score == node.score:
            return
        self.root = avl_delete(node)  # leaves the node detached, a fresh leaf
        node.score = score
        self._tree_insert(node)

    def delete(self, node: ZNode) -> None:
        self.members.pop(node.key)
        self.root = avl_delete(node)

    def _tree_insert(self, node: ZNode) -> None:
        score, member = node.score, node.key
        parent = None
        current = self.root
        go_left = False
        # avl_insert's walk, with the (score, member) comparison inlined:
        # a call per level would slow every ZADD.
        while current is not None:
            parent = current
            go_left = score < current.score or (score == current.score and member < current.key)
            current = current.left if go_left else current.right
        self.root = avl_attach(node, parent, go_left)

    # --- order ---------------------------------------------------------------------

    def rank(self, node: ZNode) -> int:
        """0-based position of `node` in (score, member) order."""
        return avl_rank(node)

    def at(self, rank: int) -> ZNode | None:
        """The node at a 0-based rank, or None if out of range."""
        if not 0 <= rank < len(self.members):
            return None
        return avl_offset(avl_first(self.root), rank)

    def offset(self, node: ZNode, offset: int) -> ZNode | None:
        """The node `offset` places after `node` (before it if negative), or
        None past either end: O(log n), the book's avl_offset."""
        return avl_offset(node, offset)

    def first(self) -> ZNode | None:
        return avl_first(self.root)

    def last(self) -> ZNode | None:
        return avl_last(self.root)

    def seek_ge(self, score: float, member: bytes) -> ZNode | None:
        """The first node at or after (score, member): the book's zset_seekge."""
        found = None
        current = self.root
        while current is not None:
            if current.score > score or (current.score == score and current.key >= member):
                found, current = current, current.left
            else:
                current = current.right
        return found

    def first_in_range(self, low: float, exclusive: bool) -> ZNode | None:
        """The first node whose score is >= low (> low if exclusive)."""
        found = None
        current = self.root
        while current is not None:
            if current.score > low or (current.score == low and not exclusive):
                found, current = current, current.left
            else:
                current = current.right
        return found

    def last_in_range(self, high: float, exclusive: bool) -> ZNode | None:
        """The last node whose score is <= high (< high if exclusive)."""
        found = None
        current = self.root
        while current is not None:
            if current.score < high or (current.score == high and not exclusive):
                found, current = current, current.right
            else:
                current = current.left
        return found

    def where(self, condition: Callable[[bytes], bool], last: bool = False) -> ZNode | None:
        """The first node, in order, whose member meets `condition` (one that
        holds from some node on); with `last`, the last node (for a condition
        that holds up to some node). One descent, O(log n). Chapter 17's
        lexicographic ranges use it, where all scores are equal."""
        found, node = None, self.root
        while node is not None:
            if condition(node.key):
                found, node = node, node.right if last else node.left
            else:
                node = node.left if last else node.right
        return found

    def nodes(self) -> Iterator[ZNode]:
        """Every node, in no particular order."""
        return iter(self.members)

    @staticmethod
    def walk(node: ZNode | None, count: int, step: int = 1) -> Iterator[ZNode]:
        """Up to `count` nodes from `node` on, forwards (step 1) or backwards (-1).

        Stepping to the in-order neighbour is amortized O(1), so k nodes
        cost O(k) after the O(log n) seek that found the first.
        """
        advance = avl_next if step > 0 else avl_prev
        while node is not None and count > 0:
            yield node
            count -= 1
            node = advance(node)

    def duplicate(self) -> ZSet:
        """A copy, member by member, in the same encoding (COPY; Redis's zsetDup)."""
        copy = type(self)()
        for node in self.nodes():
            copy.add(node.key, node.score)
        return copy

    # --- teardown -----------------------------------------------------------------

    def clear(self) -> None:
        """Empty the set now, freeing every node (see dismantle)."""
        for _ in self.dismantle():
            pass

    def dismantle(self) -> Iterator[ZNode]:
        """Empty the set, yielding each node as it is cut loose.

        The tree's parent links make reference cycles, so dropping a big
        set would leave it to Python's cyclic garbage collector, which then
        stops the world to free it in one go. Cutting the links lets
        reference counting free each node as soon as it is dropped, and lets
        a caller do the work in slices (chapter 14 does it off the event loop).
        """
        root, self.root = self.root, None
        self.members = HMap()
        yield from avl_dismantle(root)
