"""An intrusive doubly linked list: O(1) append, O(1) removal from anywhere.

Introduced in chapter 12 (Timers). The event loop closes connections that
stay idle too long. It keeps every connection in one list ordered by last
activity: a connection that does something moves to the back, so the front
is always the one idle longest, and the next idle timeout to fire is the
front's. Moving a node is O(1) because each node knows its neighbours; no
searching, no sorting, however many connections there are.

Intrusive, as in the book: the connection object is itself the list node
(it subclasses `DListNode`), so joining the list allocates nothing. The
list is circular around a sentinel node, which removes every "is this the
first or the last node?" case from the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

N = TypeVar("N", bound="DListNode")


class DListNode:
    """A list node; `prev` and `next` are None while it is in no list."""

    __slots__ = ("prev", "next")

    def __init__(self) -> None:
        self.prev: DListNode | None = None
        self.next: DListNode | None = None

    def in_list(self) -> bool:
        return self.prev is not None


class DList:
    """A circular doubly linked list of DListNode objects, front to back."""

    __slots__ = ("_sentinel",)

    def __init__(self) -> None:
        self._sentinel = DListNode()
        self._sentinel.prev = self._sentinel.next = self._sentinel

    def __bool__(self) -> bool:
        return self._sentinel.next is not self._sentinel

    def push_back(self, node: DListNode) -> None:
        """Append a node that is in no list."""
        last = self._sentinel.prev
        node.prev, node.next = last, self._sentinel
        last.next = node
        self._sentinel.prev = node

    @staticmethod
    def detach(node: DListNode) -> None:
        """Take `node` out of whatever list it is in; a detached node is left alone."""
        if node.prev is None:
            return
        node.prev.next = node.next
        node.next.prev = node.prev
        node.prev = node.next = None

    def move_to_back(self, node: DListNode) -> None:
        """Detach `node` if it is in a list, then append it."""
        sentinel = self._sentinel
        last = sentinel.prev
        if last is node:
            return  # already last: a connection is touched twice per request (read, then reply sent)
        # detach and push_back, inlined: chapter 12 on runs this for every
        # request, and two Python calls cost about a tenth of a microsecond.
        if node.prev is not None:
            node.prev.next = node.next
            node.next.prev = node.prev
        node.prev, node.next = last, sentinel
        last.next = node
        sentinel.prev = node

    def front(self) -> DListNode | None:
        """The first node, or None if the list is empty."""
        node = self._sentinel.next
        return None if node is self._sentinel else node

    def __iter__(self) -> Iterator[DListNode]:
        """Nodes front to back. The node just yielded may be detached (the
        timer sweep closes connections as it walks); other changes during
        iteration are not allowed."""
        node = self._sentinel.next
        while node is not self._sentinel:
            following = node.next
            yield node
            node = following
