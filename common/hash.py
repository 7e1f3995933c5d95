"""A Redis hash (a key's field -> value map), in its two encodings.

Introduced in chapter 20 (lists, hashes and sets). Most hashes are small
objects: a user's name, email and last login. For those Redis keeps the
fields and values flat in one listpack and finds a field by walking it:
for a dozen fields a linear scan of packed memory beats hashing, and costs
no table. Past `hash-max-listpack-entries` fields (128), or once a field
or value is longer than `hash-max-listpack-value` bytes (64), it converts
the hash, once and for good, into a hashtable (OBJECT ENCODING answers
"listpack" or "hashtable").

The flat form here is packed as a quicklist node is (common/quicklist.py):
`flat`, one bytearray of field, value, field, value... back to back, and
`sizes`, an array of their lengths, so a field costs its bytes and 4, not
a Python object. A field is found with bytearray.find (in C), its offset
checked against `offsets`, the running sums of `sizes`, by bisection: a
hit inside another entry is passed over, and past a few of those (a value
full of the field's bytes) the search walks the fields instead, at most
hash-max-listpack-entries of them. The large form is chapter 08's
hashtable (common/hashtable.py), whose nodes carry the value, so that
HSCAN's cursor survives its resizing as SCAN's does. A flat hash keeps its
insertion order (HGETALL returns it), as a listpack does.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from common.hashtable import HMap, HNode

FALSE_HITS = 8  # find() hits inside other entries before the search walks the fields instead


class HashField(HNode):
    """A field of a large hash: a hashtable node that carries its value."""

    __slots__ = ("value",)

    def __init__(self, field: bytes, value: bytes) -> None:
        super().__init__(field)
        self.value = value


class Hash:
    """Fields to values, packed while small, a hashtable once large."""

    __slots__ = ("flat", "sizes", "offsets", "table")
    type_name = b"hash"  # TYPE; the shape chapter 14 expects of a value (see common/zset.py)
    max_entries = 128  # hash-max-listpack-entries
    max_value = 64  # hash-max-listpack-value: the longest field or value kept flat

    def __init__(self) -> None:
        self.flat: bytearray | None = bytearray()  # field, value, field, value...: None once converted
        self.sizes = array("I")  # their lengths
        self.offsets: array | None = None  # where each starts, and the end: rebuilt when needed
        self.table: HMap | None = None

    @property
    def encoding(self) -> str:
        return "listpack" if self.flat is not None else "hashtable"

    def __len__(self) -> int:
        return len(self.sizes) // 2 if self.flat is not None else len(self.table)

    def convert(self) -> None:
        """Move every field into a hashtable (Redis's hashTypeConvert)."""
        table = HMap()
        for field, value in self.items():
            table.insert(HashField(field, value))
        self.table, self.flat, self.sizes, self.offsets = table, None, array("I"), None

    # --- the packed form ---------------------------------------------------------------

    def _offsets(self) -> array:
        if self.offsets is None:
            self.offsets = array("I", accumulate(self.sizes, initial=0))
        return self.offsets

    def _find(self, field: bytes) -> int:
        """The entry number of `field` in the packed form (even), or -1."""
        flat, sizes, offsets = self.flat, self.sizes, self._offsets()
        position, misses = (flat.find(field), 0) if field else (-1, FALSE_HITS)
        while position >= 0 and misses < FALSE_HITS:
            index = bisect_left(offsets, position)
            while index < len(sizes) and offsets[index] == position:  # several start here if some are empty
                if not index & 1 and sizes[index] == len(field):
                    return index
                index += 1
            position = flat.find(field, position + 1)
            misses += 1
        if position < 0 and misses < FALSE_HITS:
            return -1
        for index in range(0, len(sizes), 2):  # the walk: bounded by the number of fields
            if sizes[index] == len(field) and flat[offsets[index] : offsets[index + 1]] == field:
                return index
        return -1

    def _entry(self, index: int) -> bytes:
        offsets = self._offsets()
        return bytes(self.flat[offsets[index] : offsets[index + 1]])

    # --- fields ------------------------------------------------------------------------

    def get(self, field: bytes) -> bytes | None:
        if self.flat is not None:
            index = self._find(field)
            return None if index < 0 else self._entry(index + 1)
        node = self.table.lookup(field)
        return None if node is None else node.value

    def set(self, field: bytes, value: bytes) -> bool:
        """Set a field; True if it is new. Converts when the hash outgrows its flat form."""
        if self.flat is not None and (len(field) > self.max_value or len(value) > self.max_value):
            self.convert()
        if self.flat is not None:
            index = self._find(field)
            if index >= 0:
                offsets = self._offsets()
                self.flat[offsets[index + 1] : offsets[index + 2]] = value
                if self.sizes[index + 1] != len(value):
                    self.sizes[index + 1] = len(value)
                    self.offsets = None
                return False
            self.flat += field
            self.flat += value
            self.sizes.append(len(field))
            self.sizes.append(len(value))
            if self.offsets is not None:
                self.offsets.append(self.offsets[-1] + len(field))
                self.offsets.append(self.offsets[-1] + len(value))
            if len(self.sizes) // 2 > self.max_entries:
                self.convert()
            return True
        node = self.table.lookup(field)
        if node is not None:
            node.value = value
            return False
        self.table.insert(HashField(field, value))
        return True

    def delete(self, field: bytes) -> bool:
        if self.flat is not None:
            index = self._find(field)
            if index < 0:
                return False
            offsets = self._offsets()
            del self.flat[offsets[index] : offsets[index + 2]]
            del self.sizes[index : index + 2]
            self.offsets = None
            return True
        return self.table.pop(field) is not None

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        if self.flat is not None:
            flat, sizes, offset = self.flat, self.sizes, 0
            for index in range(0, len(sizes), 2):
                middle = offset + sizes[index]
                end = middle + sizes[index + 1]
                yield bytes(flat[offset:middle]), bytes(flat[middle:end])
                offset = end
        else:
            for node in self.table:
                yield node.key, node.value

    def random_item(self, rng: random.Random) -> tuple[bytes, bytes]:
        """A field and its value, picked at random (the hash is not empty)."""
        if self.flat is not None:
            index = 2 * rng.randrange(len(self))
            return self._entry(index), self._entry(index + 1)
        node = self.table.fair_random_node(rng)
        return node.key, node.value

    def scan(self, cursor: int) -> tuple[list[tuple[bytes, bytes]], int]:
        """One step of HSCAN: a flat hash is returned whole, with cursor 0,
        as Redis returns a listpack; a large one a bucket at a time."""
        if self.flat is not None:
            return list(self.items()), 0
        nodes, cursor = self.table.scan(cursor)
        return [(node.key, node.value) for node in nodes], cursor

    # --- the shape of a value (chapter 14, COPY, the persistence chapter) --------------

    def duplicate(self) -> Hash:
        """A copy in the same encoding, as Redis's hashTypeDup."""
        copy = Hash()
        if self.flat is not None:
            copy.flat, copy.sizes = bytearray(self.flat), array("I", self.sizes)
            return copy
        copy.convert()
        for field, value in self.items():
            copy.set(field, value)
        return copy

    def clear(self) -> None:
        self.flat, self.sizes, self.offsets, self.table = bytearray(), array("I"), None, None

    def dismantle(self) -> Iterator[bytes]:
        """Give the fields up one at a time (chapter 14 frees a large hash on its worker)."""
        if self.table is not None:
            yield from (node.key for node in self.table.drain())
        self.clear()
