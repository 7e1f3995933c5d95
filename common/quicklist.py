"""A list as Redis keeps one: a quicklist, a chain of small packed nodes.

Introduced in chapter 20 (lists, hashes and sets). A Redis list is a
queue first: LPUSH and RPOP at the two ends must cost O(1) however long
the list is. A linked list of elements gives that, but in Python every
element would be a node object plus a bytes object, about 100 bytes of
overhead for a 10-byte element. Redis's quicklist (quicklist.c) links
small *packed* nodes instead: each node holds up to 8 KB of elements
back to back in one buffer (a listpack), so a long list costs a few
objects per node, not per element, and an end is still O(1): push and
pop touch only the end node.

Here a node is two buffers: `data`, the elements' bytes back to back,
and `sizes`, an array of their lengths (4 bytes each). Redis writes each
length inside the listpack, next to its element; walking such headers
byte by byte is C's work, so a Python node keeps them apart, where
`sum(sizes[:i])` finds an element's offset in one C call. An element
costs its bytes and 4, against Redis's bytes and about 2.

The nodes sit in a deque (collections.deque, itself a linked list of
blocks, in C): O(1) at both ends, like Redis's doubly-linked list, with
no reference cycles for the garbage collector to find. A node is full
when it would pass `list-max-listpack-size`: a negative value -1 to -5
limits its bytes to 4, 8 (the default, -2), 16, 32 or 64 KB; a positive
one counts elements (with 8 KB as a safety limit). An element larger than
the limit gets a node of its own. In Redis 7.0 OBJECT ENCODING calls
every list "quicklist", however short.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterator

# list-max-listpack-size's negative settings: the most bytes a node holds.
NODE_BYTES = {-1: 4096, -2: 8192, -3: 16384, -4: 32768, -5: 65536}
SIZE_SAFETY_LIMIT = 8192  # a node of positive fill passes no more bytes than this (quicklist.c)
FILL_MAX = 32767  # quicklist.c clamps the setting to [-5, FILL_MAX]


def packed_size(length: int) -> int:
    """What an element of `length` bytes costs inside a listpack: an
    encoding header, the bytes, and a back-length (listpack.c), so that a
    node holds as many elements as Redis's would."""
    header = 1 if length < 64 else 2 if length < 4096 else 5
    entry = header + length
    return entry + (1 if entry < 128 else 2 if entry < 16384 else 3)


class PackedNode:
    """Some consecutive elements of a list, packed: their bytes back to
    back in `data`, their lengths in `sizes`; `packed` estimates the
    listpack bytes Redis would use (what the node size limit counts)."""

    __slots__ = ("data", "sizes", "packed")

    def __init__(self, items: list[bytes] | None = None) -> None:
        self.data = bytearray()
        self.sizes = array("I")
        self.packed = 0
        for item in items or ():
            self.append(item)

    def __len__(self) -> int:
        return len(self.sizes)

    def append(self, item: bytes) -> None:
        self.data += item
        self.sizes.append(len(item))
        self.packed += packed_size(len(item))

    def insert(self, index: int, item: bytes) -> None:
        offset = self.offset(index)
        self.data[offset:offset] = item
        self.sizes.insert(index, len(item))
        self.packed += packed_size(len(item))

    def offset(self, index: int) -> int:
        """Where element `index` starts in `data`: summed from the nearer end."""
        if index <= len(self.sizes) // 2:
            return sum(self.sizes[:index])
        return len(self.data) - sum(self.sizes[index:])

    def item(self, index: int) -> bytes:
        offset = self.offset(index)
        return bytes(self.data[offset : offset + self.sizes[index]])

    def remove(self, index: int) -> bytes:
        offset, size = self.offset(index), self.sizes[index]
        item = bytes(self.data[offset : offset + size])
        # Deleting at the front of a bytearray is O(1) in CPython (it moves
        # its start): popping from the head costs no copy.
        del self.data[offset : offset + size]
        del self.sizes[index]
        self.packed -= packed_size(size)
        return item

    def replace(self, index: int, item: bytes) -> None:
        offset, size = self.offset(index), self.sizes[index]
        self.data[offset : offset + size] = item
        self.sizes[index] = len(item)
        self.packed += packed_size(len(item)) - packed_size(size)

    def items(self, start: int = 0) -> Iterator[bytes]:
        offset = self.offset(start)
        data = self.data
        for size in self.sizes[start:]:
            yield bytes(data[offset : offset + size])
            offset += size

    def items_reversed(self, start: int) -> Iterator[bytes]:
        """From element `start` back to the first."""
        end = self.offset(start + 1)
        data = self.data
        for index in range(start, -1, -1):
            size = self.sizes[index]
            yield bytes(data[end - size : end])
            end -= size

    def split(self, index: int) -> PackedNode:
        """Move the elements from `index` on into a new node, returned."""
        right = PackedNode()
        offset = self.offset(index)
        right.data = self.data[offset:]
        right.sizes = self.sizes[index:]
        right.packed = sum(map(packed_size, right.sizes))
        del self.data[offset:]
        del self.sizes[index:]
        self.packed -= right.packed
        return right


class QuickList:
    """A Redis list: elements (bytes) in order, O(1) at both ends."""

    __slots__ = ("nodes", "length")
    type_name = b"list"  # TYPE; the shape chapter 14 expects of a value (see common/zset.py)
    encoding = "quicklist"  # OBJECT ENCODING, for every list in Redis 7.0
    fill = -2  # list-max-listpack-size, for every list (a server setting, as in Redis)

    def __init__(self, items: list[bytes] | None = None) -> None:
        self.nodes: deque[PackedNode] = deque()
        self.length = 0
        for item in items or ():
            self.push(item, head=False)

    def __len__(self) -> int:
        return self.length

    # --- the node size limit -----------------------------------------------------------

    @classmethod
    def allows(cls, node: PackedNode, item: bytes) -> bool:
        """Whether `item` may join `node` without passing the limit."""
        size = node.packed + packed_size(len(item))
        fill = cls.fill
        if fill < 0:
            return size <= NODE_BYTES[max(fill, -5)]
        return len(node) < min(fill, FILL_MAX) and size <= SIZE_SAFETY_LIMIT

    # --- the ends: O(1) ----------------------------------------------------------------

    def push(self, item: bytes, head: bool) -> None:
        nodes = self.nodes
        if head:
            if nodes and self.allows(nodes[0], item):
                nodes[0].insert(0, item)
            else:
                nodes.appendleft(PackedNode([item]))
        elif nodes and self.allows(nodes[-1], item):
            nodes[-1].append(item)
        else:
            nodes.append(PackedNode([item]))
        self.length += 1

    def pop(self, head: bool) -> bytes | None:
        if not self.length:
            return None
        node = self.nodes[0] if head else self.nodes[-1]
        item = node.remove(0 if head else len(node) - 1)
        if not node.sizes:
            self.nodes.popleft() if head else self.nodes.pop()
        self.length -= 1
        return item

    # --- by index: O(number of nodes) to find the node, then within it -----------------

    def locate(self, index: int) -> tuple[int, int]:
        """The node (its position in `nodes`) and the offset in it of
        element `index` (0 <= index < length), walking from the nearer end."""
        if index < self.length // 2:
            for position, node in enumerate(self.nodes):
                if index < len(node):
                    return position, index
                index -= len(node)
        else:
            from_end = self.length - 1 - index
            for position in range(len(self.nodes) - 1, -1, -1):
                node = self.nodes[position]
                if from_end < len(node):
                    return position, len(node) - 1 - from_end
                from_end -= len(node)
        raise IndexError(index)

    def normalize(self, index: int) -> int | None:
        """A Redis index (negative: from the end) as a position, or None if out of range."""
        if index < 0:
            index += self.length
        return index if 0 <= index < self.length else None

    def get(self, index: int) -> bytes | None:
        position = self.normalize(index)
        if position is None:
            return None
        node, offset = self.locate(position)
        return self.nodes[node].item(offset)

    def replace(self, index: int, item: bytes) -> bool:
        """LSET: False if out of range."""
        position = self.normalize(index)
        if position is None:
            return False
        node_position, offset = self.locate(position)
        node = self.nodes[node_position]
        if len(node) == 1 or node.packed - packed_size(node.sizes[offset]) + packed_size(len(item)) <= self.node_limit():
            node.replace(offset, item)
        else:  # it no longer fits: out, and in again where it was, splitting the node if need be
            self.delete_at(position)
            self.insert_at(position, item)
        return True

    @classmethod
    def node_limit(cls) -> int:
        return NODE_BYTES[max(cls.fill, -5)] if cls.fill < 0 else SIZE_SAFETY_LIMIT

    def insert_at(self, position: int, item: bytes) -> None:
        """Insert so that `item` becomes element `position` (0 <= position <= length)."""
        if position == 0 or position == self.length:
            self.push(item, head=position == 0)
            return
        node_position, offset = self.locate(position)
        node = self.nodes[node_position]
        if self.allows(node, item):
            node.insert(offset, item)
        else:  # full: split it there, and the item joins the left half, the right, or a node of its own
            right = node.split(offset) if offset else node
            left = node if offset else self.nodes[node_position - 1]
            if offset:
                self.nodes.insert(node_position + 1, right)
            if self.allows(left, item):
                left.append(item)
            elif self.allows(right, item):
                right.insert(0, item)
            else:
                self.nodes.insert(node_position + 1 if offset else node_position, PackedNode([item]))
        self.length += 1

    def delete_at(self, position: int) -> bytes:
        node_position, offset = self.locate(position)
        node = self.nodes[node_position]
        item = node.remove(offset)
        if not node.sizes:
            del self.nodes[node_position]
        self.length -= 1
        return item

    # --- walking -----------------------------------------------------------------------

    def items(self, start: int = 0, reverse: bool = False) -> Iterator[bytes]:
        """Elements from position `start` to the end (or, `reverse`, back to the first)."""
        if not 0 <= start < self.length:
            return
        node_position, offset = self.locate(start)
        if reverse:
            for position in range(node_position, -1, -1):
                node = self.nodes[position]
                yield from node.items_reversed(offset if position == node_position else len(node) - 1)
        else:
            for position in range(node_position, len(self.nodes)):
                yield from self.nodes[position].items(offset if position == node_position else 0)

    def range(self, start: int, stop: int) -> list[bytes]:
        """LRANGE's elements: from start to stop inclusive, negative counting from the end."""
        length = self.length
        start = max(start + length if start < 0 else start, 0)
        stop = min(stop + length if stop < 0 else stop, length - 1)
        if start > stop:
            return []
        result = []
        for item in self.items(start):
            result.append(item)
            if len(result) > stop - start:
                break
        return result

    def __iter__(self) -> Iterator[bytes]:
        for node in self.nodes:
            yield from node.items()

    # --- in the middle ------------------------------------------------------------------

    def index_of(self, pivot: bytes) -> int:
        """The position of the first element equal to `pivot`, or -1."""
        for position, item in enumerate(self):
            if item == pivot:
                return position
        return -1

    def remove(self, value: bytes, count: int) -> int:
        """LREM: remove up to `count` elements equal to `value` (0: all of
        them; negative: starting from the tail). Each node is rebuilt once."""
        limit = abs(count) or self.length
        removed = 0
        positions = range(len(self.nodes)) if count >= 0 else range(len(self.nodes) - 1, -1, -1)
        emptied = []
        for position in positions:
            node = self.nodes[position]
            items = list(node.items())
            order = range(len(items)) if count >= 0 else range(len(items) - 1, -1, -1)
            doomed = set()
            for index in order:
                if removed + len(doomed) >= limit:
                    break
                if items[index] == value:
                    doomed.add(index)
            if doomed:
                removed += len(doomed)
                kept = [item for index, item in enumerate(items) if index not in doomed]
                self.nodes[position] = PackedNode(kept)
                if not kept:
                    emptied.append(position)
            if removed >= limit:
                break
        for position in sorted(emptied, reverse=True):
            del self.nodes[position]
        self.length -= removed
        return removed

    def trim(self, start: int, stop: int) -> None:
        """LTRIM: keep elements start to stop inclusive (negative: from the end)."""
        length = self.length
        start = max(start + length if start < 0 else start, 0)
        stop = stop + length if stop < 0 else stop
        if start > stop or start >= length:
            self.nodes.clear()
            self.length = 0
            return
        stop = min(stop, length - 1)
        self.delete_ends(start, length - 1 - stop)

    def delete_ends(self, from_head: int, from_tail: int) -> None:
        """Delete `from_head` elements at the head and `from_tail` at the
        tail: whole nodes at a time, then part of the boundary node."""
        for head, count in ((True, from_head), (False, from_tail)):
            self.length -= count
            while count:
                node = self.nodes[0] if head else self.nodes[-1]
                if len(node) <= count:
                    count -= len(node)
                    self.nodes.popleft() if head else self.nodes.pop()
                    continue
                keep_from = count if head else len(node) - count
                right = node.split(keep_from)
                if head:
                    self.nodes[0] = right
                count = 0

    # --- the shape of a value (chapter 14, COPY, the persistence chapter) --------------

    def duplicate(self) -> QuickList:
        copy = QuickList()
        for node in self.nodes:
            twin = PackedNode()
            twin.data, twin.sizes, twin.packed = bytearray(node.data), array("I", node.sizes), node.packed
            copy.nodes.append(twin)
        copy.length = self.length
        return copy

    def node_items(self) -> Iterator[list[bytes]]:
        """Each node's elements: a snapshot writes one listpack per node, as Redis."""
        for node in self.nodes:
            yield list(node.items())

    def clear(self) -> None:
        self.nodes.clear()
        self.length = 0

    def dismantle(self) -> Iterator[PackedNode]:
        """Give the nodes up one at a time (chapter 14 frees a long list on its worker)."""
        self.length = 0
        while self.nodes:
            yield self.nodes.pop()
