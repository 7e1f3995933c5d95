"""A binary min-heap whose items know their own position.

Introduced in chapter 13 (TTL). Keys with a time to live sit in a heap
ordered by deadline, so the event loop finds the nearest expiry in O(1)
(the top) and removes expired keys in O(log n) each. But EXPIRE, PERSIST
and DEL change or drop the TTL of an arbitrary key, deep inside the heap;
searching for it would be O(n). So each item stores its own index in the
heap's array, kept up to date as items move (the book keeps the same
back-reference, heap_idx, in its entries): finding an item is free, and
updating or removing it is O(log n).

An item is any object with the attributes `deadline` (what is ordered,
smallest first) and `heap_index` (maintained here; -1 when in no heap).
`HeapItem` is a base class with exactly those slots.
"""

from __future__ import annotations

from typing import Any, Protocol


class Item(Protocol):
    deadline: Any
    heap_index: int


class HeapItem:
    __slots__ = ("deadline", "heap_index")

    def __init__(self, deadline: Any) -> None:
        self.deadline = deadline
        self.heap_index = -1


class Heap:
    """A min-heap of items ordered by `item.deadline`."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[Item] = []

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def clear(self) -> None:
        """Empty the heap, marking every item as in no heap."""
        for item in self._items:
            item.heap_index = -1
        self._items.clear()

    def peek(self) -> Item | None:
        """The item with the smallest deadline, or None."""
        return self._items[0] if self._items else None

    def push(self, item: Item) -> None:
        """Add an item that is in no heap."""
        self._items.append(item)
        self._sift_up(item, len(self._items) - 1)

    def pop(self) -> Item:
        """Remove and return the item with the smallest deadline."""
        top = self._items[0]
        self.remove(top)
        return top

    def remove(self, item: Item) -> None:
        """Remove an item that is in this heap, wherever it is."""
        items = self._items
        index = item.heap_index
        last = items.pop()
        item.heap_index = -1
        if last is not item:
            # The last item fills the hole, then moves up or down into place.
            self._place(last, index)

    def update(self, item: Item, deadline: Any) -> None:
        """Change the deadline of an item in this heap and restore the order."""
        item.deadline = deadline
        self._place(item, item.heap_index)

    def _place(self, item: Item, index: int) -> None:
        """Put `item` at `index`, or above or below it, wherever its deadline belongs."""
        if index > 0 and item.deadline < self._items[(index - 1) // 2].deadline:
            self._sift_up(item, index)
        else:
            self._sift_down(item, index)

    # Both sifts move a hole rather than swapping at each level: each item
    # that moves is written once, and `item` only at its final position.

    def _sift_up(self, item: Item, index: int) -> None:
        items = self._items
        deadline = item.deadline
        while index > 0:
            parent_index = (index - 1) // 2
            parent = items[parent_index]
            if not deadline < parent.deadline:
                break
            items[index] = parent
            parent.heap_index = index
            index = parent_index
        items[index] = item
        item.heap_index = index

    def _sift_down(self, item: Item, index: int) -> None:
        items = self._items
        size = len(items)
        deadline = item.deadline
        while True:
            child_index = 2 * index + 1
            if child_index >= size:
                break
            child = items[child_index]
            right_index = child_index + 1
            if right_index < size and items[right_index].deadline < child.deadline:
                child_index, child = right_index, items[right_index]
            if not child.deadline < deadline:
                break
            items[index] = child
            child.heap_index = index
            index = child_index
        items[index] = item
        item.heap_index = index
