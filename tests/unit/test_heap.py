"""common/heap.py against a sorted model, checking every item's position."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.heap import Heap, HeapItem

pytestmark = pytest.mark.since(13)


def check(heap: Heap) -> None:
    items = heap._items
    for index, item in enumerate(items):
        assert item.heap_index == index
        if index:
            assert not item.deadline < items[(index - 1) // 2].deadline


operations = st.lists(
    st.tuples(st.sampled_from(["push", "remove", "update", "pop"]), st.integers(0, 19), st.integers(0, 50)),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(operations=operations)
def test_against_model(operations):
    heap = Heap()
    items = [HeapItem(0) for _ in range(20)]
    model: dict[int, int] = {}  # item number -> deadline
    for action, number, deadline in operations:
        item = items[number]
        if action == "push" and number not in model:
            item.deadline = deadline
            heap.push(item)
            model[number] = deadline
        elif action == "remove" and number in model:
            heap.remove(item)
            del model[number]
            assert item.heap_index == -1
        elif action == "update" and number in model:
            heap.update(item, deadline)
            model[number] = deadline
        elif action == "pop" and model:
            popped = heap.pop()
            assert popped.deadline == min(model.values())
            del model[items.index(popped)]
            assert popped.heap_index == -1
        check(heap)
        assert len(heap) == len(model)
        assert (heap.peek().deadline if heap else None) == (min(model.values()) if model else None)


def test_clear():
    heap = Heap()
    items = [HeapItem(d) for d in (5, 1, 3)]
    for item in items:
        heap.push(item)
    heap.clear()
    assert not heap and heap.peek() is None
    assert all(item.heap_index == -1 for item in items)
