"""A chaining hashtable that resizes progressively, as Redis's dict does.

Introduced in chapter 08 (Hashtables). Python's dict is an excellent
hashtable, but it grows all at once: the insert that crosses its load limit
rehashes every key before it returns. With millions of keys that single
insert takes tens of milliseconds, and in a single-threaded server every
client waits for it. Redis (and the book) avoid the stall by resizing
progressively: while the table grows, the old and the new table coexist,
and every operation moves a bounded number of keys from old to new.

Design, following the book:

* Tables are Python lists of chain heads, with power-of-two sizes, so the
  bucket of a hash is ``hcode & mask``.
* Collisions chain through the nodes themselves.
* When the average chain passes MAX_LOAD_FACTOR, a table twice the size
  becomes the newer table, and the full one the older; every lookup,
  insert and pop then migrates up to REHASH_WORK nodes until the older
  table is empty.

It is intrusive: a node is any object with the attributes ``key``,
``hcode`` (the cached hash of key) and ``hnext`` (the next node in its
chain), so an entry costs one object, with no wrapper around it. `HNode`
is a convenient base class with exactly those slots.

Hashes come from Python's built-in hash(): it is implemented in C, cached
for str, and randomised per process (SipHash for bytes), so a client cannot
pick keys that all land in one chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

MAX_LOAD_FACTOR = 8  # nodes per bucket, on average, before the table grows
REHASH_WORK = 128  # nodes migrated per operation while resizing
INITIAL_SIZE = 4


class Node(Protocol):
    """What the table requires of a node: a key, its cached hash, a chain link."""

    key: Any
    hcode: int
    hnext: Node | None


class HNode:
    """A base class for hashtable nodes; subclasses add their payload."""

    __slots__ = ("key", "hcode", "hnext")

    def __init__(self, key: Any) -> None:
        self.key = key
        self.hcode = 0  # set by HMap.insert
        self.hnext: HNode | None = None


class _Table:
    """One array of chains: a fixed power-of-two number of buckets."""

    __slots__ = ("slots", "mask", "size")

    def __init__(self, capacity: int) -> None:
        self.slots: list[Node | None] = [None] * capacity
        self.mask = capacity - 1
        self.size = 0  # nodes held


class HMap:
    """A hashtable of nodes keyed by `node.key`.

    Keys must be hashable and compared with ==. Insert only absent keys
    (the caller looks up first, as a server does to decide between update
    and insert). The map must not be changed while it is being iterated.
    """

    __slots__ = ("_newer", "_older", "_migrate_pos")

    def __init__(self) -> None:
        self._newer = _Table(INITIAL_SIZE)
        self._older: _Table | None = None  # the table being emptied while resizing
        self._migrate_pos = 0  # the next bucket of _older to migrate

    def __len__(self) -> int:
        older = self._older
        return self._newer.size + (older.size if older is not None else 0)

    def lookup(self, key: Any) -> Node | None:
        """The node whose key equals `key`, or None."""
        if self._older is not None:
            self._help_rehashing()
        hcode = hash(key)
        table = self._newer
        node = table.slots[hcode & table.mask]
        while node is not None:
            if node.hcode == hcode and node.key == key:
                return node
            node = node.hnext
        table = self._older
        if table is not None:
            node = table.slots[hcode & table.mask]
            while node is not None:
                if node.hcode == hcode and node.key == key:
                    return node
                node = node.hnext
        return None

    def insert(self, node: Node) -> None:
        """Add `node`, whose key must not be in the map yet; caches its hash."""
        node.hcode = hash(node.key)
        table = self._newer
        index = node.hcode & table.mask
        node.hnext = table.slots[index]
        table.slots[index] = node
        table.size += 1
        if self._older is None:
            if table.size > MAX_LOAD_FACTOR * len(table.slots):
                self._start_resizing()
        else:
            self._help_rehashing()

    def pop(self, key: Any) -> Node | None:
        """Remove and return the node whose key equals `key`, or None."""
        if self._older is not None:
            self._help_rehashing()
        hcode = hash(key)
        for table in (self._newer, self._older):
            if table is None:
                break
            index = hcode & table.mask
            previous = None
            node = table.slots[index]
            while node is not None:
                if node.hcode == hcode and node.key == key:
                    if previous is None:
                        table.slots[index] = node.hnext
                    else:
                        previous.hnext = node.hnext
                    node.hnext = None
                    table.size -= 1
                    return node
                previous, node = node, node.hnext
        return None

    def clear(self) -> None:
        self._newer = _Table(INITIAL_SIZE)
        self._older = None
        self._migrate_pos = 0

    def __iter__(self) -> Iterator[Node]:
        """Every node once, the newer table's first (so also mid-resize)."""
        for table in (self._newer, self._older):
            if table is None:
                continue
            for head in table.slots:
                node = head
                while node is not None:
                    yield node
                    node = node.hnext

    def is_resizing(self) -> bool:
        """True while two tables coexist (for tests and demos)."""
        return self._older is not None

    # --- progressive resizing ----------------------------------------------------------

    def _start_resizing(self) -> None:
        self._older = self._newer
        self._newer = _Table(len(self._older.slots) * 2)
        self._migrate_pos = 0

    def _help_rehashing(self) -> None:
        """Move up to REHASH_WORK nodes from the older table to the newer."""
        older = self._older
        newer_slots, newer_mask = self._newer.slots, self._newer.mask
        older_slots = older.slots
        position = self._migrate_pos
        moved = 0
        while moved < REHASH_WORK and older.size > 0:
            node = older_slots[position]
            if node is None:
                position += 1  # empty buckets are cheap: they don't count as work
                continue
            older_slots[position] = node.hnext
            index = node.hcode & newer_mask
            node.hnext = newer_slots[index]
            newer_slots[index] = node
            older.size -= 1
            moved += 1
        self._newer.size += moved
        self._migrate_pos = position
        if older.size == 0:
            self._older = None
