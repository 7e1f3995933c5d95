"""The rest of Redis's string commands, over a chapter's keyspace.

Introduced in chapter 17 (the full API). The book's server has GET, SET
and DEL; a Redis user reaches for SETNX, INCR, MSET, APPEND and the rest.
Each command here behaves as in Redis 7.0: same replies, same error
texts, same order of checks (which error wins when two apply).

The commands work on any keyspace with chapter 14's API, passed in as
`db` (a module or object): `lookup_live`, `keyspace`, `Entry`,
`delete_entry`, `set_deadline`, `deadline_of`, `parse_deadline`,
`now_ms`, `discard`. A string value is a `bytes` object: APPEND and
SETRANGE build a new one, O(length), where Redis grows its buffer in place.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from common.commands import NOT_A_FLOAT, NOT_AN_INTEGER, WRONGTYPE, CommandSpec, wrong_arity_message
from common.resp import RequestParser, parse_integer
from common.resp3 import ReplyBuffer

TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
LLONG_MIN, LLONG_MAX = -(2**63), 2**63 - 1


class StringCommands:
    """SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX, APPEND, STRLEN, GETRANGE,
    SETRANGE, MGET, MSET, MSETNX, INCR, INCRBY, DECR, DECRBY, INCRBYFLOAT."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def specs(self) -> dict[bytes, CommandSpec]:
        write, fast, read = ("write", "denyoom", "fast"), ("write", "fast"), ("readonly", "fast")
        return {
            b"setnx": CommandSpec(self.setnx, 3, write, 1, 1, 1),
            b"setex": CommandSpec(self.setex, 4, ("write", "denyoom"), 1, 1, 1),
            b"psetex": CommandSpec(self.psetex, 4, ("write", "denyoom"), 1, 1, 1),
            b"getset": CommandSpec(self.getset, 3, write, 1, 1, 1),
            b"getdel": CommandSpec(self.getdel, 2, fast, 1, 1, 1),
            b"getex": CommandSpec(self.getex, -2, fast, 1, 1, 1),
            b"append": CommandSpec(self.append, 3, write, 1, 1, 1),
            b"strlen": CommandSpec(self.strlen, 2, read, 1, 1, 1),
            b"getrange": CommandSpec(self.getrange, 4, ("readonly",), 1, 1, 1),
            b"substr": CommandSpec(self.getrange, 4, ("readonly",), 1, 1, 1),  # GETRANGE's old name
            b"setrange": CommandSpec(self.setrange, 4, ("write", "denyoom"), 1, 1, 1),
            b"mget": CommandSpec(self.mget, -2, read, 1, -1, 1),
            b"mset": CommandSpec(self.mset, -3, ("write", "denyoom"), 1, -1, 2),
            b"msetnx": CommandSpec(self.msetnx, -3, ("write", "denyoom"), 1, -1, 2),
            b"incr": CommandSpec(self.incr, 2, write, 1, 1, 1),
            b"decr": CommandSpec(self.decr, 2, write, 1, 1, 1),
            b"incrby": CommandSpec(self.incrby, 3, write, 1, 1, 1),
            b"decrby": CommandSpec(self.decrby, 3, write, 1, 1, 1),
            b"incrbyfloat": CommandSpec(self.incrbyfloat, 3, write, 1, 1, 1),
        }

    # --- helpers -----------------------------------------------------------------

    def string_at(self, key: bytes, out: ReplyBuffer) -> tuple[bool, Any]:
        """(True, entry or None) if `key` holds a string or nothing; (False, None)
        after replying WRONGTYPE."""
        entry = self.db.lookup_live(key)
        if entry is not None and type(entry.value) is not bytes:
            out.error(WRONGTYPE)
            return False, None
        return True, entry

    def store(self, key: bytes, value: bytes, keep_ttl: bool = False) -> Any:
        """Set `key` to the string `value`, whatever it held; its TTL goes unless `keep_ttl`."""
        entry = self.db.keyspace.lookup(key)
        if entry is None:
            entry = self.db.add_entry(key, value)
        else:
            self.db.discard(entry.value)
            entry.value = value
            if not keep_ttl:
                self.db.set_deadline(entry, None)
        return entry

    # --- commands ------------------------------------------------------------------

    def setnx(self, args: list[bytes], out: ReplyBuffer) -> None:
        if self.db.lookup_live(args[0]) is not None:
            out.integer(0)
            return
        self.store(args[0], args[1])
        self.db.notify_keyspace_event("$", "set", args[0])
        out.integer(1)

    def setex(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_with_ttl(args, out, b"ex", "setex")

    def psetex(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_with_ttl(args, out, b"px", "psetex")

    def set_with_ttl(self, args: list[bytes], out: ReplyBuffer, unit: bytes, name: str) -> None:
        deadline = self.db.parse_deadline(unit, args[1], out, name)
        if deadline is not None:
            self.db.set_deadline(self.store(args[0], args[2]), deadline)
            self.db.notify_keyspace_event("$", "set", args[0])
            self.db.notify_keyspace_event("g", "expire", args[0])
            out.simple("OK")

    def getset(self, args: list[bytes], out: ReplyBuffer) -> None:
        if self.reply_value(args[0], out)[0]:
            self.store(args[0], args[1])
            self.db.notify_keyspace_event("$", "set", args[0])

    def getdel(self, args: list[bytes], out: ReplyBuffer) -> None:
        ok, entry = self.reply_value(args[0], out)
        if ok and entry is not None:
            self.db.delete_entry(entry)
            self.db.notify_keyspace_event("g", "del", args[0])

    def reply_value(self, key: bytes, out: ReplyBuffer) -> tuple[bool, Any]:
        """GET's reply (the value, nil, or WRONGTYPE); then as string_at."""
        ok, entry = self.string_at(key, out)
        if ok and entry is None:
            out.null()
        elif ok:
            out.bulk(entry.value)
        return ok, entry

    def getex(self, args: list[bytes], out: ReplyBuffer) -> None:
        """GETEX key [EX s | PX ms | EXAT unix-s | PXAT unix-ms | PERSIST]"""
        expiry: tuple[bytes, bytes] | None = None
        persist = False
        position = 1
        while position < len(args):
            option = args[position].lower()
            if option in (b"ex", b"px", b"exat", b"pxat") and (expiry is None or expiry[0] == option) \
                    and not persist and position + 1 < len(args):  # fmt: skip
                expiry = (option, args[position + 1])
                position += 2
            elif option == b"persist" and expiry is None:
                persist = True
                position += 1
            else:
                out.error("ERR syntax error")
                return
        # As Redis: the key first (a missing key is nil, whatever the time), then its type, then the time.
        ok, entry = self.string_at(args[0], out)
        if not ok:
            return
        if entry is None:
            out.null()
            return
        deadline = None
        if expiry is not None:
            deadline = self.db.parse_deadline(*expiry, out, "getex")
            if deadline is None:
                return
        out.bulk(entry.value)
        if deadline is not None and deadline <= self.db.now_ms():  # EXAT/PXAT in the past
            self.db.delete_entry(entry)
            self.db.notify_keyspace_event("g", "del", args[0])
        elif deadline is not None:
            self.db.set_deadline(entry, deadline)
            self.db.notify_keyspace_event("g", "expire", args[0])
        elif persist and self.db.deadline_of(args[0]) is not None:
            self.db.set_deadline(entry, None)
            self.db.notify_keyspace_event("g", "persist", args[0])

    def append(self, args: list[bytes], out: ReplyBuffer) -> None:
        ok, entry = self.string_at(args[0], out)
        if not ok:
            return
        if entry is None:
            entry = self.store(args[0], args[1])
        elif len(entry.value) + len(args[1]) > RequestParser.max_bulk_length:
            out.error(TOO_BIG)
            return
        else:
            entry.value += args[1]
        self.db.notify_keyspace_event("$", "append", args[0])
        out.integer(len(entry.value))

    def strlen(self, args: list[bytes], out: ReplyBuffer) -> None:
        ok, entry = self.string_at(args[0], out)
        if ok:
            out.integer(0 if entry is None else len(entry.value))

    def getrange(self, args: list[bytes], out: ReplyBuffer) -> None:
        start, end = parse_integer(args[1]), parse_integer(args[2])
        if start is None or end is None:
            out.error(NOT_AN_INTEGER)
            return
        ok, entry = self.string_at(args[0], out)
        if not ok:
            return
        value = b"" if entry is None else entry.value
        if start < 0 and end < 0 and start > end:
            out.bulk(b"")
            return
        size = len(value)
        start = max(start + size if start < 0 else start, 0)
        end = min(max(end + size if end < 0 else end, 0), size - 1)
        out.bulk(b"" if start > end or size == 0 else value[start : end + 1])

    def setrange(self, args: list[bytes], out: ReplyBuffer) -> None:
        offset, piece = parse_integer(args[1]), args[2]
        if offset is None:
            out.error(NOT_AN_INTEGER)
            return
        if offset < 0:
            out.error("ERR offset is out of range")
            return
        ok, entry = self.string_at(args[0], out)
        if not ok:
            return
        old = b"" if entry is None else entry.value
        if not piece:  # nothing to write: nothing is created either
            out.integer(len(old))
            return
        if offset + len(piece) > RequestParser.max_bulk_length:  # bounds what one command may allocate
            out.error(TOO_BIG)
            return
        value = old[:offset].ljust(offset, b"\0") + piece + old[offset + len(piece) :]
        if entry is None:
            self.store(args[0], value)
        else:
            entry.value = value
        self.db.notify_keyspace_event("$", "setrange", args[0])
        out.integer(len(value))

    def mget(self, args: list[bytes], out: ReplyBuffer) -> None:
        out.array(len(args))
        for key in args:
            entry = self.db.lookup_live(key)
            if entry is None or type(entry.value) is not bytes:
                out.null()
            else:
                out.bulk(entry.value)

    def mset(self, args: list[bytes], out: ReplyBuffer) -> None:
        if len(args) % 2:
            out.error(wrong_arity_message(b"mset"))
            return
        for key, value in zip(args[0::2], args[1::2]):
            self.store(key, value)
            self.db.notify_keyspace_event("$", "set", key)
        out.simple("OK")

    def msetnx(self, args: list[bytes], out: ReplyBuffer) -> None:
        if len(args) % 2:
            out.error(wrong_arity_message(b"msetnx"))
            return
        if any(self.db.lookup_live(key) is not None for key in args[0::2]):
            out.integer(0)
            return
        for key, value in zip(args[0::2], args[1::2]):
            self.store(key, value)
            self.db.notify_keyspace_event("$", "set", key)
        out.integer(1)

    def incr(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.add(args[0], 1, out)

    def decr(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.add(args[0], -1, out)

    def incrby(self, args: list[bytes], out: ReplyBuffer) -> None:
        increment = parse_integer(args[1])
        if increment is None:
            out.error(NOT_AN_INTEGER)
        else:
            self.add(args[0], increment, out)

    def decrby(self, args: list[bytes], out: ReplyBuffer) -> None:
        decrement = parse_integer(args[1])
        if decrement is None:
            out.error(NOT_AN_INTEGER)
        elif decrement == LLONG_MIN:  # its negation does not fit in 64 bits
            out.error("ERR decrement would overflow")
        else:
            self.add(args[0], -decrement, out)

    def add(self, key: bytes, increment: int, out: ReplyBuffer) -> None:
        """INCR and friends: a 64-bit signed integer, as Redis keeps it; the TTL stays."""
        ok, entry = self.string_at(key, out)
        if not ok:
            return
        current = 0 if entry is None else parse_integer(entry.value)
        if current is None:
            out.error(NOT_AN_INTEGER)
            return
        result = current + increment
        if not LLONG_MIN <= result <= LLONG_MAX:
            out.error("ERR increment or decrement would overflow")
            return
        self.store(key, b"%d" % result, keep_ttl=True)
        self.db.notify_keyspace_event("$", "incrby", key)
        out.integer(result)

    def incrbyfloat(self, args: list[bytes], out: ReplyBuffer) -> None:
        ok, entry = self.string_at(args[0], out)
        if not ok:
            return
        current = Fraction(0) if entry is None else parse_long_double(entry.value)
        increment = parse_long_double(args[1])
        if current is None or increment is None:
            out.error(NOT_A_FLOAT)
            return
        if not isinstance(current, Fraction) or not isinstance(increment, Fraction):
            out.error("ERR increment would produce NaN or Infinity")  # an operand is inf
            return
        result = round_to_long_double(current + increment)
        if result is None:
            out.error("ERR increment would produce NaN or Infinity")
            return
        value = format_long_double(result)
        self.store(args[0], value, keep_ttl=True)
        self.db.notify_keyspace_event("$", "incrbyfloat", args[0])
        out.bulk(value)


# --- INCRBYFLOAT's arithmetic ----------------------------------------------------------
# Redis computes INCRBYFLOAT in C's long double: on x86-64 the 80-bit
# extended format, a 64-bit mantissa, 11 bits more than a Python float.
# The difference shows: 0.1 added three times prints 0.3 in Redis and
# 0.30000000000000004 with floats. So the value is kept exact (a Fraction),
# rounded to a 64-bit mantissa after each step as the hardware would, and
# printed as Redis prints it: "%.17Lf", trailing zeros removed.

MANTISSA_BITS = 64
MAX_EXPONENT = 16383  # the largest finite long double is just under 2**16384
MIN_EXPONENT = -16445  # the smallest subnormal is 2**-16445
_DECIMAL = re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_HEX = re.compile(rb"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?[0-9]+)?")
_INFINITY = re.compile(rb"[+-]?(inf|infinity)", re.IGNORECASE)
MAX_LONG_DOUBLE_CHARS = 5 * 1024


def parse_long_double(text: bytes) -> Fraction | float | None:
    """The value strtold() reads from the whole of `text`, as Redis's
    string2ld accepts it (no spaces, no NaN), rounded to a long double;
    ±inf as a float; None if invalid or out of range."""
    if not text or len(text) >= MAX_LONG_DOUBLE_CHARS:
        return None
    if _INFINITY.fullmatch(text):
        return float("-inf") if text.startswith(b"-") else float("inf")
    negative = text.startswith(b"-")
    if _DECIMAL.fullmatch(text):
        body, _, exponent = text.lstrip(b"+-").lower().partition(b"e")
        whole, _, fraction = body.partition(b".")
        base, power = 10, _exponent(exponent)
        value = Fraction(_digits_to_int(whole + fraction), 10 ** len(fraction))
    elif _HEX.fullmatch(text):
        body, _, exponent = text.lstrip(b"+-")[2:].lower().partition(b"p")
        whole, _, fraction = body.partition(b".")
        base, power = 2, _exponent(exponent)
        value = Fraction(int(whole + fraction or b"0", 16), 16 ** len(fraction))
    else:
        return None
    if value == 0:
        return Fraction(0)
    if power is None or abs(power) > 100_000:  # far past any long double: overflow or underflow
        return None
    rounded = round_to_long_double(value * Fraction(base) ** power)
    if rounded is None or rounded == 0:  # strtold's ERANGE
        return None
    return -rounded if negative else rounded


def _exponent(text: bytes) -> int | None:
    """An exponent's value; None if it has more digits than any sensible one."""
    if not text:
        return 0
    return int(text) if len(text.lstrip(b"+-").lstrip(b"0")) <= 7 else None


def _digits_to_int(digits: bytes) -> int:
    """int(digits), in slices: Python refuses to convert over 4,300 digits at once."""
    value = 0
    for start in range(0, len(digits), 1000):
        chunk = digits[start : start + 1000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _int_to_digits(number: int) -> bytes:
    """b"%d" % number, in slices, for the same reason."""
    chunks = []
    while number >= 10**1000:
        number, low = divmod(number, 10**1000)
        chunks.append(b"%01000d" % low)
    chunks.append(b"%d" % number)
    return b"".join(reversed(chunks))


def round_to_long_double(value: Fraction) -> Fraction | None:
    """`value` rounded to the nearest long double (ties to even); None if it overflows."""
    if value == 0:
        return value
    magnitude = abs(value)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1  # now 2**exponent <= magnitude < 2**(exponent + 1)
    if exponent > MAX_EXPONENT:
        return None
    if exponent < MIN_EXPONENT:  # below the smallest subnormal: 0
        return Fraction(0)
    scale = Fraction(2) ** (exponent - MANTISSA_BITS + 1)
    mantissa = round(magnitude / scale)  # round() on a Fraction: half to even
    if mantissa.bit_length() > MANTISSA_BITS and exponent + 1 > MAX_EXPONENT:
        return None
    rounded = mantissa * scale
    return rounded if value > 0 else -rounded


def format_long_double(value: Fraction) -> bytes:
    """printf("%.17Lf") of `value`, trailing zeros (and a bare point) removed; "-0" is "0"."""
    scaled = round(abs(value) * 10**17)  # exact, ties to even, as glibc rounds
    digits = _int_to_digits(scaled).rjust(18, b"0")
    text = digits[:-17] + b"." + digits[-17:]
    text = text.rstrip(b"0").rstrip(b".")
    if value < 0 and text != b"0":
        text = b"-" + text
    return text
