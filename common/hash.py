"""A Redis hash (a key's field -> value map), in its two encodings.

Introduced in chapter 20 (lists, hashes and sets). Most hashes are small
objects: a user's name, email and last login. For those Redis keeps the
fields and values flat in one listpack and finds a field by walking it:
for a dozen fields a linear scan of packed memory beats hashing, and costs
no table. Past `hash-max-listpack-entries` fields (128), or once a field
or value is longer than `hash-max-listpack-value` bytes (64), it converts
the hash, once and for good, into a hashtable (OBJECT ENCODING answers
"listpack" or "hashtable").

The flat form here is two Python lists, fields and values, as chapter
17's small sorted sets: `fields.index(field)` is the linear scan, done in
C. The large form is chapter 08's hashtable (common/hashtable.py), whose
nodes carry the value, so that HSCAN's cursor survives its resizing as
SCAN's does. A flat hash keeps its insertion order (HGETALL returns it),
as a listpack does.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from common.hashtable import HMap, HNode


class HashField(HNode):
    """A field of a large hash: a hashtable node that carries its value."""

    __slots__ = ("value",)

    def __init__(self, field: bytes, value: bytes) -> None:
        super().__init__(field)
        self.value = value


class Hash:
    """Fields to values, flat while small, a hashtable once large."""

    __slots__ = ("flat_fields", "flat_values", "table")
    type_name = b"hash"  # TYPE; the shape chapter 14 expects of a value (see common/zset.py)
    max_entries = 128  # hash-max-listpack-entries
    max_value = 64  # hash-max-listpack-value: the longest field or value kept flat

    def __init__(self) -> None:
        self.flat_fields: list[bytes] | None = []
        self.flat_values: list[bytes] | None = []
        self.table: HMap | None = None

    @property
    def encoding(self) -> str:
        return "listpack" if self.flat_fields is not None else "hashtable"

    def __len__(self) -> int:
        return len(self.flat_fields) if self.flat_fields is not None else len(self.table)

    def convert(self) -> None:
        """Move every field into a hashtable (Redis's hashTypeConvert)."""
        table = HMap()
        for field, value in zip(self.flat_fields, self.flat_values):
            table.insert(HashField(field, value))
        self.table, self.flat_fields, self.flat_values = table, None, None

    def get(self, field: bytes) -> bytes | None:
        if self.flat_fields is not None:
            try:
                return self.flat_values[self.flat_fields.index(field)]
            except ValueError:
                return None
        node = self.table.lookup(field)
        return None if node is None else node.value

    def set(self, field: bytes, value: bytes) -> bool:
        """Set a field; True if it is new. Converts when the hash outgrows its flat form."""
        if self.flat_fields is not None and (len(field) > self.max_value or len(value) > self.max_value):
            self.convert()
        if self.flat_fields is not None:
            try:
                self.flat_values[self.flat_fields.index(field)] = value
                return False
            except ValueError:
                self.flat_fields.append(field)
                self.flat_values.append(value)
                if len(self.flat_fields) > self.max_entries:
                    self.convert()
                return True
        node = self.table.lookup(field)
        if node is not None:
            node.value = value
            return False
        self.table.insert(HashField(field, value))
        return True

    def delete(self, field: bytes) -> bool:
        if self.flat_fields is not None:
            try:
                index = self.flat_fields.index(field)
            except ValueError:
                return False
            del self.flat_fields[index], self.flat_values[index]
            return True
        return self.table.pop(field) is not None

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        if self.flat_fields is not None:
            yield from zip(self.flat_fields, self.flat_values)
        else:
            for node in self.table:
                yield node.key, node.value

    def random_item(self, rng: random.Random) -> tuple[bytes, bytes]:
        """A field and its value, picked at random (the hash is not empty)."""
        if self.flat_fields is not None:
            index = rng.randrange(len(self.flat_fields))
            return self.flat_fields[index], self.flat_values[index]
        node = self.table.fair_random_node(rng)
        return node.key, node.value

    def scan(self, cursor: int) -> tuple[list[tuple[bytes, bytes]], int]:
        """One step of HSCAN: a flat hash is returned whole, with cursor 0,
        as Redis returns a listpack; a large one a bucket at a time."""
        if self.flat_fields is not None:
            return list(self.items()), 0
        nodes, cursor = self.table.scan(cursor)
        return [(node.key, node.value) for node in nodes], cursor

    # --- the shape of a value (chapter 14, COPY, the persistence chapter) --------------

    def duplicate(self) -> Hash:
        """A copy in the same encoding, as Redis's hashTypeDup."""
        copy = Hash()
        if self.flat_fields is None:
            copy.convert()
        for field, value in self.items():
            copy.set(field, value)
        return copy

    def clear(self) -> None:
        self.flat_fields, self.flat_values, self.table = [], [], None

    def dismantle(self) -> Iterator[bytes]:
        """Give the fields up one at a time (chapter 14 frees a large hash on its worker)."""
        if self.table is not None:
            yield from (node.key for node in self.table.drain())
        self.clear()
