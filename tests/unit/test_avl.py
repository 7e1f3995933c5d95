"""common/avl.py against a sorted-list model: invariants, rank and offset."""

import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.avl import (
    AVLNode,
    avl_delete,
    avl_dismantle,
    avl_first,
    avl_insert,
    avl_last,
    avl_next,
    avl_offset,
    avl_prev,
    avl_rank,
)

pytestmark = pytest.mark.since(10)


class Key(AVLNode):
    __slots__ = ("key",)

    def __init__(self, key):
        super().__init__()
        self.key = key


def less(a, b):
    return a.key < b.key


def check_subtree(node, parent) -> tuple[int, int]:
    """Check AVL invariants below `node`; return (height, count)."""
    if node is None:
        return 0, 0
    assert node.parent is parent
    left_height, left_count = check_subtree(node.left, node)
    right_height, right_count = check_subtree(node.right, node)
    assert abs(left_height - right_height) <= 1
    assert node.height == 1 + max(left_height, right_height)
    assert node.count == 1 + left_count + right_count
    if node.left:
        assert node.left.key <= node.key
    if node.right:
        assert node.key <= node.right.key
    return node.height, node.count


def in_order(root):
    node = avl_first(root)
    while node is not None:
        yield node
        node = avl_next(node)


operations = st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(operations=operations)
def test_against_sorted_list(operations):
    root, model, nodes = None, [], {}
    for insert, key in operations:
        if insert:
            node = Key(key)
            root = avl_insert(root, node, less)
            bisect.insort_right(model, key)
            nodes.setdefault(key, []).append(node)
        elif nodes.get(key):
            root = avl_delete(nodes[key].pop())
            model.remove(key)
        assert check_subtree(root, None)[1] == len(model)
    ordered = list(in_order(root))
    assert [node.key for node in ordered] == model
    for rank, node in enumerate(ordered):
        assert avl_rank(node) == rank
        for offset in (-rank - 1, -rank, -1, 0, 1, len(model) - rank - 1, len(model) - rank):
            target = avl_offset(node, offset)
            expected = ordered[rank + offset] if 0 <= rank + offset < len(model) else None
            assert target is expected
    assert list(reversed(ordered)) == list(walk_back(avl_last(root)))


def walk_back(node):
    while node is not None:
        yield node
        node = avl_prev(node)


def test_sequential_inserts_stay_balanced():
    root = None
    for key in range(1, 1025):
        root = avl_insert(root, Key(key), less)
    assert root.height <= 11  # a perfectly balanced tree of 1024 nodes has height 11
    assert check_subtree(root, None) == (root.height, 1024)


def test_delete_detaches_the_node():
    nodes = [Key(k) for k in range(10)]
    root = None
    for node in nodes:
        root = avl_insert(root, node, less)
    root = avl_delete(nodes[3])
    assert (nodes[3].left, nodes[3].right, nodes[3].parent, nodes[3].count) == (None, None, None, 1)
    assert [node.key for node in in_order(root)] == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_dismantle_unlinks_every_node_once():
    nodes = [Key(k) for k in range(200)]
    root = None
    for node in nodes:
        root = avl_insert(root, node, less)
    yielded = list(avl_dismantle(root))
    assert sorted(n.key for n in yielded) == list(range(200))
    assert all(n.left is None and n.right is None and n.parent is None for n in yielded)
    assert list(avl_dismantle(None)) == []
