"""Redis glob patterns, as KEYS matches them, in time bounded by the
pattern's length times the key's.

Introduced in chapter 09 (Data Serialization), for KEYS. The rules are
those of Redis's stringmatchlen() (src/util.c), not Python's fnmatch,
which differs where it matters: fnmatch negates a class with ``[!...]``
where Redis writes ``[^...]``, has no backslash escapes, and may fold case
on some systems.

* ``*`` any run of bytes, ``?`` any one byte
* ``[abc]`` one of the bytes, ``[^abc]`` any other, ``[a-z]`` a range
  (a reversed range ``[z-a]`` means the same range)
* ``\\x`` the byte x itself, outside classes and inside them

and Redis's reading of odd patterns: the empty key matches "*" alone (and
the empty pattern), a class left open at the end of the pattern ends
there, ``[]`` matches nothing and ``[^]`` any byte, a lone trailing
backslash is a literal backslash, and in ``[a-]`` the ``-`` starts a range
up to ``]``.

Why not a regular expression: translating ``a*a*a*b`` into ``a.*a.*a.*b``
hands the work to a backtracking engine, which tries every way of sharing
the key among the stars before it gives up: each star multiplies the time,
so one KEYS command can keep a single-threaded server busy for hours
(Redis had the same bug in its own matcher, CVE-2022-36021). Python's
compiled-pattern cache would also keep every client's pattern in memory.

The way out: everything between two stars matches a fixed number of bytes
(each token takes exactly one), so the pattern is a list of fixed-length
segments ``S0 * S1 * ... * Sk``. A key matches when S0 is its prefix, Sk its
suffix, and S1...Sk-1 occur in order in between; taking the leftmost
occurrence of each is never worse than any other choice, since it leaves
the most room for the rest. No position of the key is tried twice, so a
match costs at most len(key) × len(pattern) steps, and literal runs are
compared by bytes.startswith and bytes.find, in C.
"""

from __future__ import annotations

import re
from collections.abc import Callable

STAR, QUESTION, OPEN_CLASS, BACKSLASH = b"*?[\\"
# A run of bytes that are not special: read in one step, however long.
_LITERAL_RUN = re.compile(rb"[^*?\[\\]+")
_ALL_BYTES = frozenset(range(256))


class _Segment:
    """The tokens between two stars: literal runs, any-byte tokens (?) and
    classes, each at a fixed offset, `length` bytes in all."""

    __slots__ = ("length", "literals", "classes", "anchor")

    def __init__(self) -> None:
        self.length = 0
        self.literals: list[tuple[int, bytes]] = []  # (offset, bytes that must be there)
        self.classes: list[tuple[int, frozenset[int]]] = []  # (offset, bytes allowed there)
        # The longest literal run, which find() searches for with bytes.find.
        self.anchor: tuple[int, bytes] | None = None

    def add_literal(self, text: bytes) -> None:
        if self.literals and self.literals[-1][0] + len(self.literals[-1][1]) == self.length:
            offset, previous = self.literals.pop()  # extend the run it continues
            text = previous + text
        else:
            offset = self.length
        self.literals.append((offset, text))
        if self.anchor is None or len(text) > len(self.anchor[1]):
            self.anchor = (offset, text)
        self.length = offset + len(text)

    def add_any(self) -> None:
        self.length += 1

    def add_class(self, allowed: frozenset[int]) -> None:
        if allowed is not _ALL_BYTES:
            self.classes.append((self.length, allowed))
        self.length += 1

    def matches_at(self, key: bytes, position: int) -> bool:
        """Whether the segment matches key[position : position + length],
        which the caller guarantees is inside the key."""
        for offset, text in self.literals:
            if not key.startswith(text, position + offset):
                return False
        for offset, allowed in self.classes:
            if key[position + offset] not in allowed:
                return False
        return True

    def find(self, key: bytes, start: int, end: int) -> int:
        """The leftmost position p with start <= p and p + length <= end
        where the segment matches, or -1."""
        last = end - self.length
        if self.anchor is None:  # only ? and classes: try each position
            for position in range(start, last + 1):
                if self.matches_at(key, position):
                    return position
            return -1
        offset, text = self.anchor
        position = start
        while position <= last:
            found = key.find(text, position + offset, last + offset + len(text))
            if found < 0:
                return -1
            position = found - offset
            if self.matches_at(key, position):
                return position
            position += 1
        return -1


def glob_match(pattern: bytes, key: bytes) -> bool:
    """Whether `key` matches the Redis glob `pattern`."""
    return compile_glob(pattern, len(key))(key)


def compile_glob(pattern: bytes, longest_key: int) -> Callable[[bytes], bool]:
    """A function telling whether a key of at most `longest_key` bytes
    matches `pattern`.

    Compiling costs time and memory in proportion to the pattern, but no
    more than to `longest_key` tokens: a pattern needing more bytes than
    the longest key has can match no key, however long the client made it.
    """
    if pattern == b"*":
        return lambda key: True  # the common case, and the only one matching the empty key
    segments = _parse(pattern, longest_key)
    if segments is None:
        return lambda key: False
    if len(segments) == 1:
        only = segments[0]
        # Redis's matcher stops at once on an empty key: only "" matches it.
        return lambda key: len(key) == only.length and (not key or only.matches_at(key, 0))
    first, middle, last = segments[0], segments[1:-1], segments[-1]

    def matches(key: bytes) -> bool:
        end = len(key) - last.length
        if not key or end < first.length or not first.matches_at(key, 0) or not last.matches_at(key, end):
            return False
        position = first.length
        for segment in middle:
            position = segment.find(key, position, end)
            if position < 0:
                return False
            position += segment.length
        return True

    return matches


def _parse(pattern: bytes, longest_key: int) -> list[_Segment] | None:
    """The pattern's segments, or None once they need more than longest_key bytes."""
    segments = [_Segment()]
    fixed_length = 0  # bytes the segments need, in all
    i, n = 0, len(pattern)
    while i < n:
        current = segments[-1]
        before = current.length
        c = pattern[i]
        if c == STAR:
            while i < n and pattern[i] == STAR:
                i += 1
            segments.append(_Segment())
            continue
        if c == QUESTION:
            current.add_any()
            i += 1
        elif c == OPEN_CLASS:
            i, allowed = _parse_class(pattern, i + 1)
            current.add_class(allowed)
        elif c == BACKSLASH:
            if i + 1 < n:
                i += 1  # an escaped byte stands for itself
            current.add_literal(pattern[i : i + 1])  # a trailing backslash is itself
            i += 1
        else:
            run = _LITERAL_RUN.match(pattern, i)
            assert run is not None
            # Only what could still fit in the longest key is worth keeping.
            text = run.group()[: longest_key - fixed_length + 1]
            current.add_literal(text)
            i = run.end()
        fixed_length += current.length - before
        if fixed_length > longest_key:
            return None
    return segments


def _parse_class(pattern: bytes, i: int) -> tuple[int, frozenset[int]]:
    """The class whose body starts at pattern[i] (just after "["): the
    position after it, and the bytes it allows."""
    n = len(pattern)
    negated = i < n and pattern[i] == ord("^")
    if negated:
        i += 1
    members: set[int] = set()
    while i < n:
        c = pattern[i]
        if c == BACKSLASH and i + 1 < n:
            members.add(pattern[i + 1])
            i += 2
        elif c == ord("]"):
            i += 1
            break
        elif i + 2 < n and pattern[i + 1] == ord("-"):
            low, high = sorted((c, pattern[i + 2]))
            members.update(range(low, high + 1))
            i += 3
        else:
            members.add(c)
            i += 1
    if negated:
        return i, _ALL_BYTES if not members else _ALL_BYTES - members
    return i, frozenset(members)
