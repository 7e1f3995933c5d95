"""Redis glob patterns, as KEYS matches them.

Introduced in chapter 09 (Data Serialization), for KEYS. The rules are
those of Redis's stringmatchlen() (src/util.c), not Python's fnmatch,
which differs where it matters: fnmatch negates a class with ``[!...]``
where Redis writes ``[^...]``, has no backslash escapes, and may fold case
on some systems.

* ``*`` any run of bytes, ``?`` any one byte
* ``[abc]`` one of the bytes, ``[^abc]`` any other, ``[a-z]`` a range
  (a reversed range ``[z-a]`` means the same range)
* ``\\x`` the byte x itself, outside classes and inside them

and Redis's reading of odd patterns: the empty key matches "*" alone,
a class left open at the end of the
pattern ends there, ``[]`` matches nothing and ``[^]`` any byte, a lone
trailing backslash is a literal backslash, and in ``[a-]`` the ``-`` starts
a range up to ``]``.

A pattern is translated once into a compiled regular expression, so KEYS
over a million keys runs the matching loop in C.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache


def glob_match(pattern: bytes, key: bytes) -> bool:
    """Whether `key` matches the Redis glob `pattern`."""
    return compile_glob(pattern)(key)


@lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], bool]:
    """A function telling whether a key matches `pattern`."""
    if pattern == b"*":
        return lambda key: True  # the common case, and the only one matching the empty key
    regex = re.compile(_translate(pattern), re.DOTALL)
    # Redis's matcher stops at once on an empty key: "**" or "?*" miss it.
    return lambda key: key != b"" and regex.fullmatch(key) is not None


def _literal(byte: int) -> bytes:
    return b"\\x%02x" % byte


def _translate(pattern: bytes) -> bytes:
    """The regular expression equivalent to a Redis glob pattern."""
    parts: list[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == ord("*"):
            while i < n and pattern[i] == ord("*"):
                i += 1
            parts.append(b".*")
            continue
        if c == ord("?"):
            parts.append(b".")
        elif c == ord("["):
            i, regex_class = _translate_class(pattern, i + 1)
            parts.append(regex_class)
            continue
        elif c == ord("\\") and i + 1 < n:
            i += 1
            parts.append(_literal(pattern[i]))
        else:
            parts.append(_literal(c))
        i += 1
    return b"".join(parts)


def _translate_class(pattern: bytes, i: int) -> tuple[int, bytes]:
    """Translate the class whose body starts at pattern[i] (just after "[").

    Returns the position after the class and the regex for it.
    """
    n = len(pattern)
    negated = i < n and pattern[i] == ord("^")
    if negated:
        i += 1
    members: list[bytes] = []
    while i < n:
        c = pattern[i]
        if c == ord("\\") and i + 1 < n:
            members.append(_literal(pattern[i + 1]))
            i += 2
        elif c == ord("]"):
            i += 1
            break
        elif i + 2 < n and pattern[i + 1] == ord("-"):
            low, high = sorted((c, pattern[i + 2]))
            members.append(_literal(low) + b"-" + _literal(high))
            i += 3
        else:
            members.append(_literal(c))
            i += 1
    if not members:
        return i, b"." if negated else b"(?!)"  # [^] is any byte; [] matches none
    return i, b"[" + (b"^" if negated else b"") + b"".join(members) + b"]"
