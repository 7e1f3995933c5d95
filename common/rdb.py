"""Redis's snapshot format, RDB version 10 (Redis 7.0): writing and reading.

Introduced in chapter 16 (persistence). A dump is a byte stream:

    "REDIS0010"                       magic and version
    AUX name value ...                metadata (redis-ver, ctime, ...)
    SELECTDB 0, RESIZEDB n e          the database, and how many keys (with TTL)
    [EXPIRETIME_MS t] type key value  one record per key
    EOF, CRC-64 of all the above      8 bytes, little-endian

Lengths use a variable-size encoding (1, 2, 5 or 9 bytes); a string is a
length and its bytes, or a small integer, or LZF-compressed data.

We write strings raw and sorted sets as ZSET_2 (a length, then each
member with its score as a binary little-endian double), which every
Redis since 4.0 reads; and, from chapter 20 on, the other types as Redis
7.0 writes them: a list as QUICKLIST_2 (one listpack per node), a small
hash as one listpack and a large one field by field, a set of integers
as one intset and any other set member by member. We read what Redis 7.0
writes, and what older versions wrote, for the types this project has:
strings (raw, as integers, LZF-compressed), sorted sets in all four
encodings (ZSET with text scores, ZSET_2, and the compact ZIPLIST and
LISTPACK forms), lists, hashes and sets in all of theirs. Any other type
(streams, modules) stops the load with an error naming the key: this
server cannot hold it, and silently dropping data is worse than not starting.

The formats are summarised from Redis's rdb.h, rdb.c, listpack.c,
ziplist.c and lzf_d.c; the code is ours.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

RDB_VERSION = 10
MAGIC = b"REDIS"

# Record types and opcodes (rdb.h).
TYPE_STRING = 0
TYPE_ZSET = 3  # scores as text
TYPE_ZSET_2 = 5  # scores as binary doubles
TYPE_ZSET_ZIPLIST = 12  # a small set as one ziplist (Redis < 7)
TYPE_ZSET_LISTPACK = 17  # a small set as one listpack (Redis 7)
TYPE_LIST = 1  # a length, then each element (Redis < 3.2)
TYPE_SET = 2  # a length, then each member
TYPE_HASH = 4  # a length, then each field and its value
TYPE_LIST_ZIPLIST = 10  # a short list as one ziplist (Redis < 3.2)
TYPE_SET_INTSET = 11  # a set of integers as one intset
TYPE_HASH_ZIPLIST = 13  # a small hash as one ziplist (Redis < 7)
TYPE_LIST_QUICKLIST = 14  # a quicklist of ziplists (Redis 3.2 to 6)
TYPE_HASH_LISTPACK = 16  # a small hash as one listpack (Redis 7)
TYPE_LIST_QUICKLIST_2 = 18  # a quicklist of listpacks (Redis 7)
QUICKLIST_NODE_PLAIN, QUICKLIST_NODE_PACKED = 1, 2  # a quicklist 2 node: one element as is, or a listpack
OTHER_TYPES = {6: "module", 7: "module", 9: "hash (zipmap, Redis < 2.6)", 15: "stream", 19: "stream", 21: "stream"}
OP_FUNCTION2, OP_FUNCTION, OP_MODULE_AUX = 245, 246, 247
OP_IDLE, OP_FREQ, OP_AUX, OP_RESIZEDB = 248, 249, 250, 251
OP_EXPIRETIME_MS, OP_EXPIRETIME, OP_SELECTDB, OP_EOF = 252, 253, 254, 255

# Special string encodings: a length byte 11xxxxxx, then what xxxxxx says.
ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF = 0, 1, 2, 3

WRITE_CHUNK = 1 << 20  # bytes gathered before one write() (and one CRC update)


class RdbError(Exception):
    """The file is not a dump this server can load; the message says why and where."""


# --- CRC-64 -----------------------------------------------------------------------
# Redis's checksum: CRC-64 with the Jones polynomial, reflected, initial
# value 0 (crc64.c). Python has no CRC-64, so it is computed here, eight
# bytes per step ("slicing by 8": eight 256-entry tables, one lookup per
# byte but one Python statement per 8 bytes, which is what costs in Python).

_POLY = 0x95AC9329AC4BC9B5  # the Jones polynomial, bit-reversed


def _crc_tables() -> list[list[int]]:
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        previous = tables[-1]
        tables.append([(value >> 8) ^ first[value & 0xFF] for value in previous])
    return tables


_T = _crc_tables()


def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """The CRC-64 of `data`, continuing from `crc` (0 to start)."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _T
    view = memoryview(data).cast("B")
    whole = len(view) - len(view) % 8
    for (word,) in struct.iter_unpack("<Q", view[:whole]):
        x = crc ^ word
        crc = (
            t7[x & 0xFF] ^ t6[(x >> 8) & 0xFF] ^ t5[(x >> 16) & 0xFF] ^ t4[(x >> 24) & 0xFF]
            ^ t3[(x >> 32) & 0xFF] ^ t2[(x >> 40) & 0xFF] ^ t1[(x >> 48) & 0xFF] ^ t0[x >> 56]
        )  # fmt: skip
    for byte in view[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# --- writing ----------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    if length < 1 << 6:
        return bytes((length,))
    if length < 1 << 14:
        return bytes((0x40 | length >> 8, length & 0xFF))
    if length <= 0xFFFFFFFF:
        return b"\x80" + length.to_bytes(4, "big")
    return b"\x81" + length.to_bytes(8, "big")


def encode_string(data: bytes) -> bytes:
    return encode_length(len(data)) + data


class RdbWriter:
    """Writes one dump to a binary file, computing its checksum as it goes.

    Usage: `begin(keys, expires)`, then `string(...)` or `sorted_set(...)`
    for each key, then `end()`. Nothing is flushed to disk here: the
    caller fsyncs and renames (see chapter 16's save)."""

    def __init__(self, file: BinaryIO, checksum: bool = True) -> None:
        self.file = file
        self.checksum = checksum
        self.crc = 0
        self.buffer = bytearray()

    def begin(self, keys: int, expires: int, aux: dict[str, str] | None = None) -> None:
        self.buffer += b"%s%04d" % (MAGIC, RDB_VERSION)
        fields = {"redis-ver": "7.0.0", "redis-bits": "64", "ctime": str(int(time.time())), "aof-base": "0"}
        for name, value in {**fields, **(aux or {})}.items():
            self.buffer += bytes((OP_AUX,)) + encode_string(name.encode()) + encode_string(value.encode())
        self.buffer += bytes((OP_SELECTDB,)) + encode_length(0)
        self.buffer += bytes((OP_RESIZEDB,)) + encode_length(keys) + encode_length(expires)

    def string(self, key: bytes, value: bytes, expire_ms: int | None) -> None:
        self._key(TYPE_STRING, key, expire_ms)
        self.buffer += encode_length(len(value))
        self.buffer += value
        self._maybe_flush()

    def sorted_set(self, key: bytes, length: int, items: Iterable[tuple[bytes, float]], expire_ms: int | None) -> None:
        self._key(TYPE_ZSET_2, key, expire_ms)
        buffer = self.buffer
        buffer += encode_length(length)
        for member, score in items:
            buffer += encode_length(len(member))
            buffer += member
            buffer += struct.pack("<d", score)
            if len(buffer) >= WRITE_CHUNK:
                self._maybe_flush()

    def list_quicklist(self, key: bytes, nodes: list[list[bytes]], expire_ms: int | None) -> None:
        """A list, one listpack per quicklist node (QUICKLIST_2, Redis 7)."""
        self._key(TYPE_LIST_QUICKLIST_2, key, expire_ms)
        self.buffer += encode_length(len(nodes))
        for items in nodes:
            self.buffer += encode_length(QUICKLIST_NODE_PACKED)
            self.buffer += encode_string(encode_listpack(items))
            self._maybe_flush()

    def hash_listpack(self, key: bytes, pairs: Iterable[tuple[bytes, bytes]], expire_ms: int | None) -> None:
        """A small hash: field, value, field, value... in one listpack."""
        self._key(TYPE_HASH_LISTPACK, key, expire_ms)
        self.buffer += encode_string(encode_listpack([item for pair in pairs for item in pair]))
        self._maybe_flush()

    def hash(self, key: bytes, length: int, pairs: Iterable[tuple[bytes, bytes]], expire_ms: int | None) -> None:
        self._key(TYPE_HASH, key, expire_ms)
        self._strings(length, (item for pair in pairs for item in pair))

    def intset(self, key: bytes, values: list[int], expire_ms: int | None) -> None:
        self._key(TYPE_SET_INTSET, key, expire_ms)
        self.buffer += encode_string(encode_intset(values))
        self._maybe_flush()

    def set(self, key: bytes, length: int, members: Iterable[bytes], expire_ms: int | None) -> None:
        self._key(TYPE_SET, key, expire_ms)
        self._strings(length, members)

    def _strings(self, length: int, strings: Iterable[bytes]) -> None:
        buffer = self.buffer
        buffer += encode_length(length)
        for string in strings:
            buffer += encode_length(len(string))
            buffer += string
            if len(buffer) >= WRITE_CHUNK:
                self._maybe_flush()

    def end(self) -> None:
        self.buffer.append(OP_EOF)
        self._flush()
        self.file.write(struct.pack("<Q", self.crc))  # 0: "no checksum", as Redis with rdbchecksum no

    def _key(self, kind: int, key: bytes, expire_ms: int | None) -> None:
        if expire_ms is not None:
            self.buffer.append(OP_EXPIRETIME_MS)
            self.buffer += struct.pack("<q", expire_ms)
        self.buffer.append(kind)
        self.buffer += encode_length(len(key))
        self.buffer += key

    def _maybe_flush(self) -> None:
        if len(self.buffer) >= WRITE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.checksum:
            self.crc = crc64(self.buffer, self.crc)
        self.file.write(self.buffer)
        self.buffer.clear()


# --- reading ----------------------------------------------------------------------


class Record:
    """One key read from a dump, its value by its type_name: bytes for a
    b"string", a list of (member, score) for a b"zset", of elements for a
    b"list", of (field, value) for a b"hash", of members for a b"set"."""

    __slots__ = ("key", "value", "expire_ms", "type_name")

    def __init__(self, key: bytes, type_name: bytes, value: bytes | list, expire_ms: int | None) -> None:
        self.key, self.type_name, self.value, self.expire_ms = key, type_name, value, expire_ms


class RdbReader:
    """Reads a whole dump held in memory (`data`), checking as it goes.

    `records()` yields each key; `aux` holds the metadata fields once read.
    Every error is an RdbError whose message names the byte offset.
    """

    def __init__(self, data: bytes, verify_checksum: bool = True) -> None:
        self.data = data
        self.pos = 0
        self.verify_checksum = verify_checksum
        self.aux: dict[bytes, bytes] = {}
        self.version = 0

    def fail(self, message: str, at: int | None = None) -> RdbError:
        return RdbError(f"{message} (at byte {self.pos if at is None else at})")

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise self.fail("unexpected end of file: the dump is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file: the dump is truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def records(self) -> Iterator[Record]:
        header = self.take(9)
        if header[:5] != MAGIC or not header[5:].isdigit():
            raise self.fail("not an RDB file (no REDIS magic)", 0)
        self.version = int(header[5:])
        if not 1 <= self.version <= RDB_VERSION:
            raise self.fail(f"RDB version {self.version} is not supported (at most {RDB_VERSION})", 5)
        expire_ms = None
        while True:
            at = self.pos
            kind = self.byte()
            if kind == OP_EXPIRETIME_MS:
                expire_ms = struct.unpack("<q", self.take(8))[0]
            elif kind == OP_EXPIRETIME:
                expire_ms = struct.unpack("<i", self.take(4))[0] * 1000
            elif kind == OP_AUX:
                name = self.string()
                self.aux[name] = self.string()
            elif kind == OP_SELECTDB:
                db = self.length()
                if db != 0:
                    raise self.fail(f"the dump has keys in database {db}; this server has database 0 only", at)
            elif kind == OP_RESIZEDB:
                self.length()
                self.length()
            elif kind == OP_FREQ:
                self.byte()
            elif kind == OP_IDLE:
                self.length()
            elif kind in (OP_MODULE_AUX, OP_FUNCTION, OP_FUNCTION2):
                raise self.fail("the dump holds module data or functions, which this server does not have", at)
            elif kind == OP_EOF:
                self.check_end()
                return
            else:
                key = self.string()
                type_name, value = self.value(kind, key, at)
                yield Record(key, type_name, value, expire_ms)
                expire_ms = None

    def check_end(self) -> None:
        if self.version < 5:  # no checksum before version 5
            return
        expected = struct.unpack("<Q", self.take(8))[0]
        if self.verify_checksum and expected != 0:  # 0: written without a checksum
            actual = crc64(memoryview(self.data)[: self.pos - 8])
            if actual != expected:
                raise self.fail(f"wrong checksum: the file says {expected:#018x}, its content gives {actual:#018x}")

    def value(self, kind: int, key: bytes, at: int) -> tuple[bytes, bytes | list]:
        """A record's value, and its type's name."""
        if kind == TYPE_STRING:
            return b"string", self.string()
        if kind == TYPE_ZSET_2 or kind == TYPE_ZSET:
            items = []
            for _ in range(self.length()):
                member = self.string()
                score = struct.unpack("<d", self.take(8))[0] if kind == TYPE_ZSET_2 else self.text_double()
                if math.isnan(score):
                    raise self.fail(f"sorted set {key!r} has a NaN score")
                items.append((member, score))
            return b"zset", self.unique(items, key)
        if kind == TYPE_ZSET_LISTPACK or kind == TYPE_ZSET_ZIPLIST:
            elements = self.packed(key, kind == TYPE_ZSET_LISTPACK, "sorted set")
            items = []
            for member, score in zip(elements[0::2], elements[1::2]):
                value = parse_double(score)
                if value is None:
                    raise self.fail(f"sorted set {key!r}: score {score!r} is not a number")
                items.append((member, value))
            return b"zset", self.unique(items, key)
        if kind == TYPE_LIST:
            return b"list", [self.string() for _ in range(self.length())]
        if kind == TYPE_LIST_ZIPLIST:
            return b"list", self.packed(key, False, "list")
        if kind == TYPE_LIST_QUICKLIST or kind == TYPE_LIST_QUICKLIST_2:
            items = []
            for _ in range(self.length()):
                container = self.length() if kind == TYPE_LIST_QUICKLIST_2 else QUICKLIST_NODE_PACKED
                if container == QUICKLIST_NODE_PLAIN:
                    items.append(self.string())
                elif container == QUICKLIST_NODE_PACKED:
                    items += self.packed(key, kind == TYPE_LIST_QUICKLIST_2, "list")
                else:
                    raise self.fail(f"list {key!r}: unknown quicklist node container {container}")
            return b"list", items
        if kind == TYPE_SET:
            return b"set", self.distinct([self.string() for _ in range(self.length())], key)
        if kind == TYPE_SET_INTSET:
            blob, blob_at = self.string(), self.pos
            try:
                return b"set", self.distinct([b"%d" % value for value in decode_intset(blob)], key)
            except ValueError as error:
                raise self.fail(f"set {key!r}: corrupt intset ({error})", blob_at) from None
        if kind == TYPE_HASH:
            pairs = [(self.string(), self.string()) for _ in range(self.length())]
            return b"hash", self.unique(pairs, key)
        if kind == TYPE_HASH_LISTPACK or kind == TYPE_HASH_ZIPLIST:
            elements = self.packed(key, kind == TYPE_HASH_LISTPACK, "hash")
            return b"hash", self.unique(list(zip(elements[0::2], elements[1::2])), key)
        name = OTHER_TYPES.get(kind)
        if name is None:
            raise self.fail(f"unknown record type {kind}", at)
        raise self.fail(f"key {key!r} is a {name}, a type this server does not have", at)

    def packed(self, key: bytes, listpack: bool, type_name: str) -> list[bytes]:
        """The elements of a listpack (or a ziplist) string, integers written
        out as text; a sorted set's and a hash's come in pairs."""
        blob, blob_at = self.string(), self.pos
        try:
            elements = decode_listpack(blob) if listpack else decode_ziplist(blob)
        except (IndexError, ValueError, struct.error) as error:
            raise self.fail(f"{type_name} {key!r}: corrupt {'listpack' if listpack else 'ziplist'} ({error})",
                            blob_at) from None  # fmt: skip
        if type_name != "list" and len(elements) % 2:
            raise self.fail(f"{type_name} {key!r}: odd number of elements", blob_at)
        return [element if isinstance(element, bytes) else b"%d" % element for element in elements]

    def distinct(self, members: list[bytes], key: bytes) -> list[bytes]:
        if len(set(members)) != len(members):
            raise self.fail(f"set {key!r} has a member twice")
        return members

    def unique(self, items: list[tuple[bytes, Any]], key: bytes) -> list[tuple[bytes, Any]]:
        """Pairs whose first halves (members, fields) must be distinct."""
        if len({member for member, _ in items}) != len(items):
            raise self.fail(f"key {key!r} has a member or field twice")
        return items

    def length(self) -> int:
        """A length; an encoded string's marker is an error here."""
        length, encoded = self.length_or_encoding()
        if encoded:
            raise self.fail("a length was expected, not an encoded string")
        return length

    def length_or_encoding(self) -> tuple[int, bool]:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return (first & 0x3F) << 8 | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise self.fail(f"unknown length encoding {first:#04x}", self.pos - 1)

    def string(self) -> bytes:
        length, encoded = self.length_or_encoding()
        if not encoded:
            return self.take(length)
        if length == ENC_INT8:
            return b"%d" % struct.unpack("<b", self.take(1))[0]
        if length == ENC_INT16:
            return b"%d" % struct.unpack("<h", self.take(2))[0]
        if length == ENC_INT32:
            return b"%d" % struct.unpack("<i", self.take(4))[0]
        if length == ENC_LZF:
            compressed_length, plain_length = self.length(), self.length()
            at = self.pos
            try:
                return lzf_decompress(self.take(compressed_length), plain_length)
            except ValueError as error:
                raise self.fail(f"corrupt LZF data ({error})", at) from None
        raise self.fail(f"unknown string encoding {length}", self.pos - 1)

    def text_double(self) -> float:
        """The old ZSET's score: a length byte (253 nan, 254 +inf, 255 -inf), then text."""
        length = self.byte()
        special = {253: math.nan, 254: math.inf, 255: -math.inf}
        if length in special:
            return special[length]
        value = parse_double(self.take(length))
        if value is None:
            raise self.fail("a score is not a number")
        return value


def parse_double(text: bytes) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def lzf_decompress(data: bytes, expected_length: int) -> bytes:
    """LZF, as Redis compresses strings longer than 20 bytes: a control
    byte < 32 copies that many + 1 literal bytes; otherwise its top 3 bits
    (7: more in the next byte) + 2 bytes are copied from earlier output, at
    an offset made of its low 5 bits and the next byte."""
    out = bytearray()
    position, size = 0, len(data)
    while position < size:
        control = data[position]
        position += 1
        if control < 32:
            run = control + 1
            if position + run > size:
                raise ValueError("literal run past the end")
            out += data[position : position + run]
            position += run
            continue
        length = control >> 5
        if length == 7:
            length += data[position]
            position += 1
        start = len(out) - ((control & 0x1F) << 8) - data[position] - 1
        position += 1
        length += 2
        if start < 0:
            raise ValueError("back reference before the start")
        if start + length <= len(out):
            out += out[start : start + length]
        else:  # the copy overlaps what it writes: byte by byte, as LZF means it
            for index in range(start, start + length):
                out.append(out[index])
    if len(out) != expected_length:
        raise ValueError(f"{len(out)} bytes decompressed, {expected_length} expected")
    return bytes(out)


def decode_listpack(blob: bytes) -> list[bytes | int]:
    """The elements of a listpack: 6 header bytes (total size, count), then
    entries of encoding + data + back-length, then 0xFF."""
    if len(blob) < 7 or int.from_bytes(blob[:4], "little") != len(blob) or blob[-1] != 0xFF:
        raise ValueError("bad header or end")
    elements: list[bytes | int] = []
    position = 6
    while blob[position] != 0xFF:
        start = position
        first = blob[position]
        if first < 0x80:  # 0xxxxxxx: a 7-bit unsigned integer
            elements.append(first)
            position += 1
        elif first < 0xC0:  # 10xxxxxx: a string of up to 63 bytes
            length = first & 0x3F
            elements.append(blob[position + 1 : position + 1 + length])
            position += 1 + length
        elif first < 0xE0:  # 110xxxxx: a 13-bit signed integer
            value = (first & 0x1F) << 8 | blob[position + 1]
            elements.append(value - (1 << 13) if value >= 1 << 12 else value)
            position += 2
        elif first < 0xF0:  # 1110xxxx: a string of up to 4095 bytes
            length = (first & 0x0F) << 8 | blob[position + 1]
            elements.append(blob[position + 2 : position + 2 + length])
            position += 2 + length
        elif first == 0xF0:  # a string with a 32-bit length
            length = int.from_bytes(blob[position + 1 : position + 5], "little")
            elements.append(blob[position + 5 : position + 5 + length])
            position += 5 + length
        elif 0xF1 <= first <= 0xF4:  # 16, 24, 32 or 64-bit signed integers
            width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[first]
            elements.append(int.from_bytes(blob[position + 1 : position + 1 + width], "little", signed=True))
            position += 1 + width
        else:
            raise ValueError(f"unknown entry encoding {first:#04x}")
        entry = position - start
        position += 1 if entry < 128 else 2 if entry < 16383 else 3 if entry < 2097151 else 4 if entry < 268435455 else 5
        if position >= len(blob):
            raise ValueError("entry past the end")
    if len(elements) != int.from_bytes(blob[4:6], "little") and int.from_bytes(blob[4:6], "little") != 0xFFFF:
        raise ValueError("element count does not match the header")
    return elements


def decode_ziplist(blob: bytes) -> list[bytes | int]:
    """The elements of a ziplist (Redis < 7): a 10-byte header, then entries
    of previous-length + encoding + data, then 0xFF."""
    if len(blob) < 11 or int.from_bytes(blob[:4], "little") != len(blob) or blob[-1] != 0xFF:
        raise ValueError("bad header or end")
    elements: list[bytes | int] = []
    position = 10
    while blob[position] != 0xFF:
        position += 5 if blob[position] == 0xFE else 1  # the previous entry's length
        first = blob[position]
        kind = first >> 6
        if kind == 0:  # 00xxxxxx: a string of up to 63 bytes
            length, position = first & 0x3F, position + 1
        elif kind == 1:  # 01xxxxxx xxxxxxxx: up to 16383 bytes
            length, position = (first & 0x3F) << 8 | blob[position + 1], position + 2
        elif first == 0x80:  # 10000000 and a 32-bit big-endian length
            length, position = int.from_bytes(blob[position + 1 : position + 5], "big"), position + 5
        else:
            width = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}.get(first)
            if width is not None:
                elements.append(int.from_bytes(blob[position + 1 : position + 1 + width], "little", signed=True))
                position += 1 + width
            elif 0xF1 <= first <= 0xFD:  # 1111xxxx: the integer xxxx - 1, from 0 to 12
                elements.append((first & 0x0F) - 1)
                position += 1
            else:
                raise ValueError(f"unknown entry encoding {first:#04x}")
            continue
        elements.append(blob[position : position + length])
        position += length
    return elements


# --- the packed encodings, written -------------------------------------------------


def encode_listpack(elements: list[bytes]) -> bytes:
    """A listpack of `elements`, each as a string entry: an encoding byte
    (or two, or five) that holds its length, its bytes, and the entry's
    length again, backwards (listpack.c's back-length), so that the pack
    can be walked from either end. Redis would write an element that
    reads as an integer as one; a string entry reads back the same."""
    body = bytearray()
    for element in elements:
        length = len(element)
        if length < 64:
            header = bytes((0x80 | length,))
        elif length < 4096:
            header = bytes((0xE0 | length >> 8, length & 0xFF))
        else:
            header = b"\xf0" + length.to_bytes(4, "little")
        body += header
        body += element
        body += encode_back_length(len(header) + length)
    count = min(len(elements), 0xFFFF)  # 65535: "count them", as listpack.c
    return (6 + len(body) + 1).to_bytes(4, "little") + count.to_bytes(2, "little") + bytes(body) + b"\xff"


def encode_back_length(length: int) -> bytes:
    """7 bits per byte, most significant first; every byte but the first
    has its high bit set, which tells a reader going backwards to go on.
    As many bytes as listpack.c gives each length (its thresholds are one
    short of the powers of 128: 16,383 takes three bytes)."""
    size = 1 if length <= 127 else 2 if length < 16383 else 3 if length < 2097151 else 4 if length < 268435455 else 5
    return bytes([length >> 7 * (size - 1)] + [(length >> 7 * shift) & 0x7F | 0x80 for shift in range(size - 2, -1, -1)])


def encode_intset(values: list[int]) -> bytes:
    """An intset: the width of its integers (2, 4 or 8 bytes, the least
    that holds them all), their count, then the integers, sorted, little-endian."""
    low, high = (min(values), max(values)) if values else (0, 0)
    width = 2 if -(2**15) <= low and high < 2**15 else 4 if -(2**31) <= low and high < 2**31 else 8
    return struct.pack("<II", width, len(values)) + b"".join(value.to_bytes(width, "little", signed=True)
                                                             for value in values)  # fmt: skip


def decode_intset(blob: bytes) -> list[int]:
    if len(blob) < 8:
        raise ValueError("shorter than its header")
    width, count = struct.unpack("<II", blob[:8])
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise ValueError(f"width {width} and count {count} do not match its {len(blob)} bytes")
    values = [int.from_bytes(blob[start : start + width], "little", signed=True) for start in range(8, len(blob), width)]
    if any(left >= right for left, right in zip(values, values[1:])):
        raise ValueError("not sorted, or a member twice")
    return values
