"""An intrusive AVL tree with subtree counts: ordered, with rank and offset in O(log n).

Introduced in chapter 10 (Balanced Binary Tree), for chapter 11's sorted
sets, which must list members in score order and answer "who is 100th?".

An AVL tree is a binary search tree that keeps, at every node, the heights
of the two subtrees within one of each other, by rotating nodes after each
insert or delete; so its depth stays below 1.45 log2(n) and every walk from
the root is O(log n). Each node also counts the nodes of its subtree, which
turns "the k-th node" and "the rank of this node" into O(log n) walks too.

It is intrusive, as in the book: the stored object is the node (the sorted
set's node subclasses AVLNode), so there is no wrapper per element, and
the tree holds no comparator. The container walks down comparing its own
keys, links the new node as a leaf, and calls `avl_fix` to rebalance. The
functions work on nodes and return the (possibly new) root; an empty tree
is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

N = TypeVar("N", bound="AVLNode")


class AVLNode:
    """A tree node: links, the height of its subtree and the number of nodes in it."""

    __slots__ = ("left", "right", "parent", "height", "count")

    def __init__(self) -> None:
        self.left: AVLNode | None = None
        self.right: AVLNode | None = None
        self.parent: AVLNode | None = None
        self.height = 1
        self.count = 1


def _update(node: AVLNode) -> None:
    """Recompute height and count from the children."""
    left, right = node.left, node.right
    left_height = left.height if left is not None else 0
    right_height = right.height if right is not None else 0
    node.height = 1 + (left_height if left_height > right_height else right_height)
    node.count = 1 + (left.count if left is not None else 0) + (right.count if right is not None else 0)


def _height(node: AVLNode | None) -> int:
    return node.height if node is not None else 0


def _count(node: AVLNode | None) -> int:
    return node.count if node is not None else 0


def _rotate_left(node: AVLNode) -> AVLNode:
    """  node              new
           \\     ->     /
           new        node
           /             \\
        inner           inner
    The caller relinks the parent to the returned subtree root."""
    new = node.right
    inner = new.left
    node.right = inner
    if inner is not None:
        inner.parent = node
    new.parent = node.parent
    new.left = node
    node.parent = new
    _update(node)
    _update(new)
    return new


def _rotate_right(node: AVLNode) -> AVLNode:
    """The mirror image of _rotate_left."""
    new = node.left
    inner = new.right
    node.left = inner
    if inner is not None:
        inner.parent = node
    new.parent = node.parent
    new.right = node
    node.parent = new
    _update(node)
    _update(new)
    return new


def _fix_left_heavy(node: AVLNode) -> AVLNode:
    """The left subtree is 2 taller: one rotation, or two if its inner side is the tall one."""
    if _height(node.left.left) < _height(node.left.right):
        node.left = _rotate_left(node.left)
    return _rotate_right(node)


def _fix_right_heavy(node: AVLNode) -> AVLNode:
    if _height(node.right.right) < _height(node.right.left):
        node.right = _rotate_right(node.right)
    return _rotate_left(node)


def avl_fix(node: AVLNode) -> AVLNode:
    """Restore heights, counts and balance from `node` up to the root; return the root.

    Call it on a newly linked leaf, or on the parent of a removed node.
    """
    while True:
        parent = node.parent
        _update(node)
        left_height, right_height = _height(node.left), _height(node.right)
        if left_height == right_height + 2:
            subtree = _fix_left_heavy(node)
        elif right_height == left_height + 2:
            subtree = _fix_right_heavy(node)
        else:
            subtree = node
        if parent is None:
            return subtree
        if parent.left is node:
            parent.left = subtree
        else:
            parent.right = subtree
        node = parent


def avl_insert(root: N | None, node: N, less: Callable[[N, N], bool]) -> N:
    """Link `node` where `less` orders it (equal keys go right) and rebalance; return the root.

    A convenience for simple users; sorted sets inline this walk.
    """
    parent = None
    current = root
    go_left = False
    while current is not None:
        parent = current
        go_left = less(node, current)
        current = current.left if go_left else current.right
    return avl_attach(node, parent, go_left)


def avl_attach(node: N, parent: N | None, as_left: bool) -> N:
    """Link the detached `node` as a leaf under `parent` (as its left or
    right child; no parent: the tree was empty), rebalance, return the root.

    The second half of an insert, for containers that find the place
    themselves by comparing their own keys.
    """
    node.parent = parent
    if parent is not None:
        if as_left:
            parent.left = node
        else:
            parent.right = node
    return avl_fix(node)


def _delete_with_at_most_one_child(node: AVLNode) -> AVLNode | None:
    """Unlink a node that has no more than one child; return the new root."""
    child = node.left if node.left is not None else node.right
    parent = node.parent
    if child is not None:
        child.parent = parent
    if parent is None:
        return child
    if parent.left is node:
        parent.left = child
    else:
        parent.right = child
    return avl_fix(parent)


def avl_delete(node: AVLNode) -> AVLNode | None:
    """Remove `node` from its tree and return the new root (None if now empty).

    A node with two children is replaced by its in-order successor: the
    successor node itself moves into its place (the tree is intrusive: we
    cannot just copy payloads, since other indexes point at the nodes).
    The removed node is left detached: no links, height and count 1.
    """
    if node.left is None or node.right is None:
        root = _delete_with_at_most_one_child(node)
    else:
        successor = node.right
        while successor.left is not None:
            successor = successor.left
        root = _delete_with_at_most_one_child(successor)
        # Rebalancing may have rotated `node`; its links are current.
        successor.left, successor.right, successor.parent = node.left, node.right, node.parent
        successor.height, successor.count = node.height, node.count
        if successor.left is not None:
            successor.left.parent = successor
        if successor.right is not None:
            successor.right.parent = successor
        parent = node.parent
        if parent is None:
            root = successor
        elif parent.left is node:
            parent.left = successor
        else:
            parent.right = successor
    node.left = node.right = node.parent = None
    node.height = node.count = 1
    return root


# --- order -----------------------------------------------------------------------------


def avl_first(root: N | None) -> N | None:
    """The leftmost (smallest) node."""
    if root is None:
        return None
    while root.left is not None:
        root = root.left
    return root


def avl_last(root: N | None) -> N | None:
    """The rightmost (largest) node."""
    if root is None:
        return None
    while root.right is not None:
        root = root.right
    return root


def avl_next(node: N) -> N | None:
    """The in-order successor, or None. Amortized O(1) over a walk."""
    if node.right is not None:
        node = node.right
        while node.left is not None:
            node = node.left
        return node
    while node.parent is not None and node.parent.right is node:
        node = node.parent
    return node.parent


def avl_prev(node: N) -> N | None:
    """The in-order predecessor, or None."""
    if node.left is not None:
        node = node.left
        while node.right is not None:
            node = node.right
        return node
    while node.parent is not None and node.parent.left is node:
        node = node.parent
    return node.parent


def avl_rank(node: AVLNode) -> int:
    """The 0-based in-order position of `node`, in O(log n)."""
    rank = _count(node.left)
    while node.parent is not None:
        if node.parent.right is node:
            rank += _count(node.parent.left) + 1
        node = node.parent
    return rank


def avl_offset(node: N, offset: int) -> N | None:
    """The node `offset` places after `node` in order (before, if negative),
    or None if there is none. O(log n): it climbs only as far as needed and
    uses subtree counts to skip whole subtrees, as the book's avl_offset."""
    position = 0  # rank of `node` relative to the starting node
    while position != offset:
        if position < offset and position + _count(node.right) >= offset:
            node = node.right  # the target is in the right subtree
            position += _count(node.left) + 1
        elif position > offset and position - _count(node.left) <= offset:
            node = node.left  # the target is in the left subtree
            position -= _count(node.right) + 1
        else:
            parent = node.parent
            if parent is None:
                return None
            if parent.right is node:
                position -= _count(node.left) + 1
            else:
                position += _count(node.right) + 1
            node = parent
    return node


def avl_dismantle(root: N | None) -> Iterator[N]:
    """Cut every node of the tree loose and yield it, one at a time.

    Parent links make every tree a web of reference cycles: drop its root
    and reference counting frees nothing; the cyclic garbage collector
    frees it later, all at once. Dismantling unlinks each node, so each is
    freed as soon as the caller drops it, and the caller can stop between
    nodes to do the work in slices.
    """
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if node.left is not None:
            stack.append(node.left)
        if node.right is not None:
            stack.append(node.right)
        node.left = node.right = node.parent = None
        yield node
