"""Chapter 23's keyspace: keys and values in two lists, no object per key.

Chapter 08's hashtable is intrusive: each key's node is its Entry, an
object of 64 bytes (a key, a value and a chain link, plus the header and
the garbage collector's link that every Python object with slots pays).
A million small keys cost 157 MB, 1.67 times Redis's 94 MB, and every SET
of a new key allocates one more object the collector must track, so that
loading keys makes it run (chapter 23's README: the stalls while a
million keys load). Here a key costs two list slots instead: `keys[i]`
and `values[i]`, open addressing with linear probing, at most half full:
16 to 32 bytes per key, nothing for the collector.

What stays as in chapter 08 (and Redis):

* Progressive resizing, in SEGMENTS tables. A key's table is picked by
  high bits of its hash; each table doubles on its own when half full,
  and its keys move to the new one MIGRATE_WORK slots per operation while
  lookups search both. A slot of the older table whose key left is marked
  GONE, not emptied, so that the probe sequences through it stay whole
  until the older table is dropped. Segments keep each allocation small:
  a list of two million slots takes 10 ms to allocate here, and growing
  one in slices was worse (a realloc that copies it: 17 ms); a segment's
  doubling at a million keys allocates 32,768 slots twice.
* SCAN's cursor. A bucket here is a key's home slot, `hash(key) & mask`;
  its keys are in the run of full slots that starts there, so one SCAN
  step walks that run and keeps the keys whose home it is. The cursor's
  low SEGMENT_BITS say which segment, the rest where in it: the segments
  are scanned one after the other. Deleting from the newer table shifts
  later keys of a run back (no tombstones) but never before their home: a
  key keeps its bucket until a resize, which the reverse-binary cursor
  survives as chapter 17 explains.
* The same interface as HMap (lookup, insert, pop, scan, random_node,
  iteration, len, clear), so chapter 14's keyspace functions and every
  command written against them work unchanged on it: their nodes are
  `KeyHandle`s, made when asked for. A handle is an Entry (chapter 14's)
  whose `value` is the value when it was looked up, and whose assignment
  writes through to the table. Two handles of one key do not see each
  other's assignments: nothing holds a handle past the command it was
  looked up for.

The fast path (server.py) does not ask for handles: `value_of` and
`store` read and write a key's value directly.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from common.chapters import load_chapter
from common.hashtable import next_cursor

Entry = load_chapter(14).Entry

# At most half the slots are full: a lookup that finds its key passes 1.5
# slots on average, one that does not 2.5 (linear probing, Knuth).
MAX_LOAD = 0.5
# Older slots moved per operation while migrating. Inserts add at most one
# key per operation, and the older table has half the slots the newer one
# needs before it is half full: at 4 per operation the migration ends long
# before the newer table must grow again.
MIGRATE_WORK = 4
SEGMENT_BITS = 6
SEGMENTS = 1 << SEGMENT_BITS
SEGMENT_SHIFT = 40  # a segment is picked by hash bits 40-45, a slot by the low bits
RANDOM_TRIES = 100
INITIAL_SLOTS = 8


class Gone:
    """The mark of an older table's slot whose key left during a migration."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "GONE"


GONE = Gone()
CACHED_VALUE = Entry.__dict__["value"]  # Entry's own slot, under the property below


class KeyHandle(Entry):
    """A key and its value as chapter 14's functions expect an Entry."""

    __slots__ = ("table",)

    def __init__(self, key: bytes, value: Any, table: CompactKeyspace) -> None:
        self.key, self.hnext, self.table = key, None, table
        CACHED_VALUE.__set__(self, value)

    @property
    def value(self) -> Any:
        return CACHED_VALUE.__get__(self)

    @value.setter
    def value(self, value: Any) -> None:
        CACHED_VALUE.__set__(self, value)
        self.table.store(self.key, value)


class Segment:
    """One open-addressing table, and its older one while it migrates."""

    __slots__ = ("keys", "values", "mask", "size", "older_keys", "older_values", "older_mask", "older_left",
                 "migrate_pos")  # fmt: skip

    def __init__(self) -> None:
        self.keys: list[Any] = [None] * INITIAL_SLOTS  # the newer table: inserts go here
        self.values: list[Any] = [None] * INITIAL_SLOTS
        self.mask = INITIAL_SLOTS - 1
        self.size = 0  # keys in both tables
        self.older_keys: list[Any] | None = None  # the table being emptied, while migrating
        self.older_values: list[Any] = []
        self.older_mask = 0
        self.older_left = 0  # keys still in the older table
        self.migrate_pos = 0  # the older table's slots before this one are GONE or empty

    def value_of(self, key: bytes) -> Any:
        """The value at `key`, or None."""
        if self.older_keys is not None:
            self.migrate()
        index = probe(self.keys, self.mask, key)
        if index >= 0:
            return self.values[index]
        if self.older_keys is not None and (index := probe(self.older_keys, self.older_mask, key)) >= 0:
            return self.older_values[index]
        return None

    def store(self, key: bytes, value: Any) -> Any:
        """Set `key` to `value`; the value it replaced, or None if it is new."""
        if self.older_keys is not None:
            self.migrate()
        index = probe(self.keys, self.mask, key)
        if index >= 0:
            old, self.values[index] = self.values[index], value
            return old
        if self.older_keys is not None and (older := probe(self.older_keys, self.older_mask, key)) >= 0:
            old, self.older_values[older] = self.older_values[older], value
            return old
        self.add(~index, key, value)  # the empty slot that ended the probe
        return None

    def add(self, index: int, key: bytes, value: Any) -> None:
        """Put a new key in the newer table's empty slot `index`; past half
        full, start doubling (unless a migration runs: it ends first)."""
        self.keys[index], self.values[index] = key, value
        self.size += 1
        if self.older_keys is None and self.size > MAX_LOAD * (self.mask + 1):
            self.start_migrating()

    def pop(self, key: bytes) -> tuple[bool, Any]:
        """(True, its value) after removing `key`, or (False, None)."""
        if self.older_keys is not None:
            self.migrate()
        index = probe(self.keys, self.mask, key)
        if index >= 0:
            value = self.values[index]
            self.remove_newer(index)
            self.size -= 1
            return True, value
        if self.older_keys is not None and (index := probe(self.older_keys, self.older_mask, key)) >= 0:
            value = self.older_values[index]
            self.older_keys[index], self.older_values[index] = GONE, None
            self.older_left -= 1
            self.size -= 1
            return True, value
        return False, None

    def tables(self) -> list[tuple[list[Any], list[Any]]]:
        """(keys, values) of the newer table, and of the older one if any."""
        if self.older_keys is None:
            return [(self.keys, self.values)]
        return [(self.keys, self.values), (self.older_keys, self.older_values)]

    def scan(self, cursor: int) -> tuple[list[tuple[bytes, Any]], int]:
        """HMap.scan's step on this segment: (key, value) pairs whose home is
        the bucket at `cursor` (while migrating, the smaller table's bucket and
        the bigger table's buckets it splits into), and the next cursor."""
        if not self.size:
            return [], 0
        found: list[tuple[bytes, Any]] = []
        if self.older_keys is None:
            collect_home(self.keys, self.values, self.mask, cursor & self.mask, found)
            return found, next_cursor(cursor, self.mask)
        small_mask, big_mask = self.older_mask, self.mask
        collect_home(self.older_keys, self.older_values, small_mask, cursor & small_mask, found)
        while True:
            collect_home(self.keys, self.values, big_mask, cursor & big_mask, found)
            cursor = next_cursor(cursor, big_mask)
            if not cursor & (small_mask ^ big_mask):
                return found, cursor

    def remove_newer(self, index: int) -> None:
        """Empty slot `index` of the newer table, and shift back the keys of
        its run that may go there (each stays at or after its home)."""
        keys, values, mask = self.keys, self.values, self.mask
        hole = index
        while True:
            index = (index + 1) & mask
            key = keys[index]
            if key is None:
                break
            if (index - (hash(key) & mask)) & mask >= (index - hole) & mask:  # its home is at or before the hole
                keys[hole], values[hole] = key, values[index]
                hole = index
        keys[hole] = values[hole] = None

    def start_migrating(self) -> None:
        slots = 2 * (self.mask + 1)
        self.older_keys, self.older_values, self.older_mask = self.keys, self.values, self.mask
        self.older_left, self.migrate_pos = self.size, 0
        self.keys, self.values, self.mask = [None] * slots, [None] * slots, slots - 1
        self.migrate()

    def migrate(self) -> None:
        """One operation's share of the resize: MIGRATE_WORK older slots moved."""
        older_keys, older_values = self.older_keys, self.older_values
        assert older_keys is not None
        keys, values, mask = self.keys, self.values, self.mask
        position = self.migrate_pos
        for _ in range(MIGRATE_WORK):
            if not self.older_left:
                break
            key = older_keys[position]
            if key is not None and key is not GONE:
                index = hash(key) & mask  # bytes cache their hash: no rehashing cost
                while keys[index] is not None:
                    index = (index + 1) & mask
                keys[index], values[index] = key, older_values[position]
                older_keys[position], older_values[position] = GONE, None
                self.older_left -= 1
            position += 1
        self.migrate_pos = position
        if not self.older_left:
            self.older_keys, self.older_values, self.older_mask = None, [], 0


def probe(keys: list[Any], mask: int, key: bytes) -> int:
    """The slot of `key` from its home on, or ~slot of the empty slot that
    ended the search (where it would go). A GONE slot is passed."""
    index = hash(key) & mask
    while (found := keys[index]) is not None:
        if found is key or found == key:
            return index
        index = (index + 1) & mask
    return ~index


def collect_home(keys: list[Any], values: list[Any], mask: int, home: int, found: list[tuple[bytes, Any]]) -> None:
    """The keys whose home slot is `home`: in the run of full slots from there."""
    index = home
    while (key := keys[index]) is not None:
        if key is not GONE and hash(key) & mask == home:
            found.append((key, values[index]))
        index = (index + 1) & mask


class CompactKeyspace:
    """A map of keys to values in SEGMENTS open-addressing tables.

    As HMap: insert only absent keys (`store` replaces or inserts), and do
    not use the map while iterating over it.
    """

    __slots__ = ("segments", "bits", "select")

    def __init__(self) -> None:
        self.bits, self.select = SEGMENT_BITS, SEGMENTS - 1  # (tests make tables of one segment)
        self.clear()

    def clear(self) -> None:
        self.segments = [Segment() for _ in range(self.select + 1)]

    def __len__(self) -> int:
        return sum(segment.size for segment in self.segments)

    def is_resizing(self) -> bool:
        return any(segment.older_keys is not None for segment in self.segments)

    # --- values: the fast path's interface -----------------------------------------------

    def value_of(self, key: bytes) -> Any:
        """The value at `key`, or None."""
        hcode = hash(key)
        segment = self.segments[hcode >> SEGMENT_SHIFT & self.select]
        if segment.older_keys is not None:  # migrating: both tables to search, and a step of the move
            return segment.value_of(key)
        # probe()'s search, inline: GET's every call, two calls fewer.
        keys, mask = segment.keys, segment.mask
        index = hcode & mask
        while (found := keys[index]) is not None:
            if found is key or found == key:
                return segment.values[index]
            index = (index + 1) & mask
        return None

    def store(self, key: bytes, value: Any) -> Any:
        """Set `key` to `value`; the value it replaced, or None if it is new."""
        hcode = hash(key)
        segment = self.segments[hcode >> SEGMENT_SHIFT & self.select]
        if segment.older_keys is not None:  # migrating: both tables to search, and a step of the move
            return segment.store(key, value)
        # Segment.store for a table not migrating, with probe()'s search inline: SET's every call, two calls fewer.
        keys, values, mask = segment.keys, segment.values, segment.mask
        index = hcode & mask
        while (found := keys[index]) is not None:
            if found is key or found == key:
                old, values[index] = values[index], value
                return old
            index = (index + 1) & mask
        segment.add(index, key, value)
        return None

    # --- nodes: HMap's interface, for chapter 14's functions -------------------------------

    def lookup(self, key: bytes) -> KeyHandle | None:
        value = self.value_of(key)
        return None if value is None else KeyHandle(key, value, self)

    def insert(self, node: Any) -> None:
        """Add `node`'s key and value (the key must be absent)."""
        self.store(node.key, node.value)

    def pop(self, key: bytes) -> KeyHandle | None:
        found, value = self.segments[hash(key) >> SEGMENT_SHIFT & self.select].pop(key)
        return KeyHandle(key, value, self) if found else None

    def __iter__(self) -> Iterator[KeyHandle]:
        for segment in self.segments:
            for keys, values in segment.tables():
                for key, value in zip(keys, values):
                    if key is not None and key is not GONE:
                        yield KeyHandle(key, value, self)

    def scan(self, cursor: int) -> tuple[list[KeyHandle], int]:
        """One step of SCAN: the cursor's low SEGMENT_BITS pick the segment,
        the rest is that segment's cursor; 0 once the last one is done."""
        if not len(self):
            return [], 0
        number, inner = cursor & self.select, cursor >> self.bits
        pairs, inner = self.segments[number].scan(inner)
        if not inner:  # this segment done: the next one from its start
            number += 1
            if number == len(self.segments):
                number = 0
        return [KeyHandle(key, value, self) for key, value in pairs], inner << self.bits | number

    def random_node(self, rng: random.Random | Any) -> KeyHandle | None:
        """A key picked at random: a random slot of any table, tried again
        while empty. Every key holds one slot, so every key has the same
        chance (chapter 08's chains favour keys in short chains). Past
        RANDOM_TRIES empty slots (tables never shrink), the walk goes on
        from the last slot tried to the next full one."""
        if not len(self):
            return None
        tables = [table for segment in self.segments for table in segment.tables()]
        ends = list(accumulate(len(keys) for keys, _ in tables))  # one numbering of every table's slots
        index = 0
        for attempt in range(RANDOM_TRIES + ends[-1]):
            index = rng.randrange(ends[-1]) if attempt < RANDOM_TRIES else (index + 1) % ends[-1]
            table = bisect_right(ends, index)
            slot = index - (ends[table - 1] if table else 0)
            keys, values = tables[table]
            key = keys[slot]
            if key is not None and key is not GONE:
                return KeyHandle(key, values[slot], self)
        return None  # not reached: the map holds a key somewhere
