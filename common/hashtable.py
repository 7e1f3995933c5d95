"""A chaining hashtable that resizes progressively, as Redis's dict does.

Introduced in chapter 08 (Hashtables). Python's dict is an excellent
hashtable, but it grows all at once: the insert that crosses its load limit
rehashes every key before it returns. With millions of keys that single
insert takes tens of milliseconds, and in a single-threaded server every
client waits for it. Redis (and the book) avoid the stall by resizing
progressively: while the table grows, the old and the new table coexist,
and every operation moves a bounded number of nodes from old to new.

Design, following the book:

* A table is a plain Python list of chain heads whose length is a power of
  two, so the bucket of a key is ``hash(key) & mask``.
* Collisions chain through the nodes themselves (``node.hnext``).
* When the map holds more than MAX_LOAD_FACTOR nodes per bucket, a table
  twice the size becomes the newer table and the full one the older; every
  lookup, insert and pop then does up to REHASH_WORK steps of migration
  until the older table is empty. Inserts go to the newer table; lookups
  and pops search both.

It is intrusive: a node is any object with the attributes ``key`` (hashable,
compared with ==) and ``hnext`` (the next node in its chain), so a stored
entry costs one object, with no wrapper around it. `HNode` is a convenient base class with exactly those
slots; a class that already has a slotted base (chapter 11's sorted-set
node is an AVL node) declares the two slots itself instead.

Hashes come from Python's built-in hash(): it runs in C, str and bytes
cache theirs (so hashing a key a second time is free), and it is salted
per process (SipHash for str and bytes), so a client cannot choose keys
that all fall into one chain (hash flooding).

Unlike the book, a node does not keep its hash (the book's `hcode`). C
would have to recompute it; a Python bytes or str object caches its own
hash, and a hash kept as a Python int would cost 40 bytes per key (an int
object and a slot): a fifth of a small key's memory, for nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

# Nodes per bucket, on average, before the table doubles. The book uses 8,
# cheap in C; in Python every node a lookup passes costs interpreted work
# (an attribute load and a comparison), and a missing key passes a whole
# chain, in both tables while resizing. Measured on chapter 14 with 100,000
# keys: a GET took 1.57 us at 8, 0.95 us at 2, 0.98 us at 1; a GET of a
# missing key 1.70, 0.64 and 0.62 us. At 2 a table costs 4 to 8 bytes per
# key (a list slot per bucket), against the ~150 bytes of the key itself,
# and a resize allocates its new table in one go (`[None] * n`, about 3 ms
# for a million slots), where C's calloc gets lazily zeroed pages.
MAX_LOAD_FACTOR = 2
# Migration steps per operation while resizing: moving one node or passing
# one empty bucket is a step, so every operation's extra work is bounded.
# Few, as Redis moves one bucket per operation: an event loop executes a
# whole read of pipelined requests at once (1,600 SETs in 64 KB), and at 128
# steps each the migration of half a million nodes ran inside a few events,
# a 118 ms stall, measured while loading a million keys. At 4 it is spread
# over more operations than the next doubling needs (1.5 steps per insert
# at the load factor of 2), and the longest PING fell to 13 ms.
REHASH_WORK = 4
# RANDOMKEY's random buckets before it walks to the next non-empty one.
RANDOM_TRIES = 100
# fair_random_node's chain positions per bucket (longer chains are rare at
# a load factor of 2), and its tries before it settles for random_node.
FAIR_CHAIN = 8
FAIR_TRIES = 200
INITIAL_CAPACITY = 4


class Node(Protocol):
    """What the map requires of a node: a key, its cached hash, a chain link."""

    key: Any
    hnext: Any  # the next node in the chain, or None


N = TypeVar("N", bound=Node)


class HNode:
    """A base class for hashtable nodes; subclasses add their payload."""

    __slots__ = ("key", "hnext")

    def __init__(self, key: Any) -> None:
        self.key = key
        self.hnext: HNode | None = None


class HMap(Generic[N]):
    """A hashtable of nodes, keyed by `node.key`.

    Insert only absent keys: the caller looks up first, as a server does to
    choose between updating and inserting. Do not use the map at all while
    iterating over it: during a resize even `lookup` moves nodes between
    the tables, so the iteration could miss a node or see one twice. Take
    `list(hmap)` first to change the map while walking it.
    """

    # The two tables are kept as flat attributes (list, mask, node count)
    # rather than objects of their own, saving an attribute load on every
    # access in the hot paths.
    __slots__ = ("_newer", "_newer_mask", "_older", "_older_mask", "_older_size", "_migrate_pos", "_size")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every node (the nodes themselves are left as they are)."""
        self._newer: list[N | None] = [None] * INITIAL_CAPACITY
        self._newer_mask = INITIAL_CAPACITY - 1
        self._older: list[N | None] | None = None  # the table being emptied, while resizing
        self._older_mask = 0
        self._older_size = 0  # nodes still in the older table
        self._migrate_pos = 0  # the older table's buckets before this one are empty
        self._size = 0  # nodes in both tables

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        """The number of buckets in the newer table."""
        return self._newer_mask + 1

    def is_resizing(self) -> bool:
        """True while two tables coexist."""
        return self._older is not None

    def lookup(self, key: Any) -> N | None:
        """The node whose key equals `key`, or None."""
        if self._older is not None:
            self._help_rehashing()
        hcode = hash(key)
        node = self._newer[hcode & self._newer_mask]
        while node is not None:
            if node.key == key:
                return node
            node = node.hnext
        older = self._older
        if older is not None:
            node = older[hcode & self._older_mask]
            while node is not None:
                if node.key == key:
                    return node
                node = node.hnext
        return None

    def insert(self, node: N) -> None:
        """Add `node`, whose key must not be in the map yet."""
        newer = self._newer
        index = hash(node.key) & self._newer_mask
        node.hnext = newer[index]
        newer[index] = node
        self._size += 1
        if self._older is not None:
            self._help_rehashing()
        elif self._size > MAX_LOAD_FACTOR * len(newer):
            self._start_resizing()

    def pop(self, key: Any) -> N | None:
        """Remove and return the node whose key equals `key` (its hnext reset
        to None), or None if there is none."""
        if self._older is not None:
            self._help_rehashing()
        hcode = hash(key)
        node = _detach(self._newer, hcode & self._newer_mask, key)
        if node is None and self._older is not None:
            node = _detach(self._older, hcode & self._older_mask, key)
            if node is not None:
                self._older_size -= 1
        if node is not None:
            self._size -= 1
        return node

    def __iter__(self) -> Iterator[N]:
        """Every node once, the newer table's first; the map must not be
        used until the iteration ends (see the class docstring)."""
        for table in (self._newer, self._older):
            if table is None:
                continue
            for node in table:
                while node is not None:
                    yield node
                    node = node.hnext

    def scan(self, cursor: int) -> tuple[list[N], int]:
        """One step of Redis's SCAN (chapter 17): the nodes of the bucket at
        `cursor` (while resizing, of the smaller table's bucket and of the
        bigger table's buckets it splits into), and the next cursor, 0 once
        every bucket was visited. Start with cursor 0.

        The cursor counts in reverse binary: the high bits of the bucket
        index change fastest. A table that doubles splits bucket i into i
        and i + size, which this order visits together, and a table that
        halves merges them; so every key present from the first call to the
        last is returned at least once, whatever resizes happen between
        calls (a key may come twice, as in Redis).
        """
        if not self._size:
            return [], 0
        nodes: list[N] = []
        if self._older is None:
            _collect(self._newer[cursor & self._newer_mask], nodes)
            return nodes, next_cursor(cursor, self._newer_mask)
        small, small_mask = self._older, self._older_mask  # while resizing, the older is the smaller
        big, big_mask = self._newer, self._newer_mask
        _collect(small[cursor & small_mask], nodes)
        while True:
            _collect(big[cursor & big_mask], nodes)
            cursor = next_cursor(cursor, big_mask)
            if not cursor & (small_mask ^ big_mask):  # back to the next bucket of the smaller table
                return nodes, cursor

    def random_node(self, rng: random.Random | Any) -> N | None:
        """A node picked at random (chapter 17's RANDOMKEY), None if empty:
        a random bucket of either table, tried again while empty, then a
        random node of its chain. As Redis's, not exactly uniform (a node in
        a longer chain is picked less often). The table never shrinks, so
        after mass deletions most buckets may be empty: past RANDOM_TRIES
        misses, the walk goes on from the last bucket tried to the next
        non-empty one, at most once around the table."""
        if not self._size:
            return None
        tables = [self._newer] if self._older is None else [self._newer, self._older]
        total = sum(len(table) for table in tables)
        index = 0
        for attempt in range(RANDOM_TRIES + total):
            index = rng.randrange(total) if attempt < RANDOM_TRIES else (index + 1) % total
            table = tables[0] if index < len(tables[0]) else tables[1]
            node = table[index if table is tables[0] else index - len(tables[0])]
            if node is not None:
                chain: list[N] = []
                _collect(node, chain)
                return rng.choice(chain)
        return None  # not reached: the map holds a node somewhere

    def drain(self) -> Iterator[N]:
        """Pop every node, one at a time (a large collection dismantled on
        chapter 14's worker, which releases the GIL between slices)."""
        for node in list(self):
            self.pop(node.key)
            yield node

    def fair_random_node(self, rng: random.Random | Any) -> N | None:
        """A node picked uniformly at random (chapter 20's SRANDMEMBER,
        SPOP and HRANDFIELD, whose draws Redis's tests check for fairness,
        as Redis's dictGetFairRandomKey): a random bucket, kept with a
        chance in proportion to its chain's length, then a random node of
        it; an empty bucket or a refusal tries again, so that every node has
        the same chance on each try. A table left sparse by deletions (it
        never shrinks) falls back to random_node."""
        if not self._size:
            return None
        tables = [self._newer] if self._older is None else [self._newer, self._older]
        total = sum(len(table) for table in tables)
        for _ in range(FAIR_TRIES):
            index = rng.randrange(total)
            head = tables[0][index] if index < len(tables[0]) else tables[1][index - len(tables[0])]
            if head is None:
                continue
            chain: list[N] = []
            _collect(head, chain)
            # Taken with a chance in proportion to its length: every node
            # alike, as long as no chain is longer than FAIR_CHAIN (a longer
            # one is taken whole, so that no node is ever out of reach).
            if rng.random() * max(FAIR_CHAIN, len(chain)) < len(chain):
                return rng.choice(chain)
        return self.random_node(rng)

    # --- progressive resizing --------------------------------------------------------

    def _start_resizing(self) -> None:
        capacity = 2 * len(self._newer)
        self._older, self._older_mask, self._older_size = self._newer, self._newer_mask, self._size
        self._newer, self._newer_mask = [None] * capacity, capacity - 1
        self._migrate_pos = 0
        self._help_rehashing()

    def _help_rehashing(self) -> None:
        """Move nodes from the front of the older table to the newer, up to
        REHASH_WORK steps; drop the older table once it is empty."""
        older, newer, newer_mask = self._older, self._newer, self._newer_mask
        position, left = self._migrate_pos, self._older_size
        for _ in range(REHASH_WORK):
            if not left:
                break
            node = older[position]
            if node is None:
                position += 1
                continue
            older[position] = node.hnext
            index = hash(node.key) & newer_mask  # bytes and str cache their hash: no rehashing cost
            node.hnext = newer[index]
            newer[index] = node
            left -= 1
        self._migrate_pos, self._older_size = position, left
        if not left:
            self._older = None


def _detach(table: list[Any], index: int, key: Any) -> Any:
    """Unlink and return the node with `key` from the chain at table[index], or None."""
    previous = None
    node = table[index]
    while node is not None:
        if node.key == key:
            if previous is None:
                table[index] = node.hnext
            else:
                previous.hnext = node.hnext
            node.hnext = None
            return node
        previous, node = node, node.hnext
    return None



CURSOR_BITS = 64  # cursors are 64-bit, as Redis's (an unsigned long)


def _collect(node: Any, nodes: list[Any]) -> None:
    while node is not None:
        nodes.append(node)
        node = node.hnext


def next_cursor(cursor: int, mask: int) -> int:
    """Add 1 to the cursor's masked bits read in reverse (the highest bit of
    the mask is the lowest of the count); 0 once they have all wrapped."""
    cursor |= ~mask & ((1 << CURSOR_BITS) - 1)  # unmasked bits set: the carry runs past them
    reversed_cursor = int(f"{cursor:0{CURSOR_BITS}b}"[::-1], 2) + 1
    return int(f"{reversed_cursor & ((1 << CURSOR_BITS) - 1):0{CURSOR_BITS}b}"[::-1], 2)
