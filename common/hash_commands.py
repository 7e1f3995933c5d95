"""Redis's hash commands (its t_hash.c), on common/hash.py.

Introduced in chapter 20 (lists, hashes and sets). A hash is an object
stored under one key: HSET and HGET a field, HGETALL the whole, HINCRBY a
counter inside it. A family works on a chapter's keyspace `db` (chapter
14's module), as common/list_commands.py's does; an empty hash is no key.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

from common.commands import NOT_AN_INTEGER, CommandSpec, delete_if_empty, lookup_typed, wrong_arity_message
from common.hash import Hash
from common.resp import parse_integer
from common.resp3 import ReplyBuffer
from common.strings import format_long_double, parse_long_double, round_to_long_double
from common.zset_commands import LONG_MAX, MAX_RANDOM_DRAWS


class HashCommands:
    """HSET, HGET, HGETALL, HINCRBY and the rest of Redis 7.0's hash commands (HSCAN is common/keys.py's)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def specs(self) -> dict[bytes, CommandSpec]:
        write = ("write", "denyoom", "fast")
        read = ("readonly", "fast")
        return {
            b"hset": CommandSpec(self.hset, -4, write, 1, 1, 1),
            b"hmset": CommandSpec(self.hmset, -4, write, 1, 1, 1),
            b"hsetnx": CommandSpec(self.hsetnx, 4, write, 1, 1, 1),
            b"hget": CommandSpec(self.hget, 3, read, 1, 1, 1),
            b"hmget": CommandSpec(self.hmget, -3, read, 1, 1, 1),
            b"hdel": CommandSpec(self.hdel, -3, ("write", "fast"), 1, 1, 1),
            b"hlen": CommandSpec(self.hlen, 2, read, 1, 1, 1),
            b"hstrlen": CommandSpec(self.hstrlen, 3, read, 1, 1, 1),
            b"hexists": CommandSpec(self.hexists, 3, read, 1, 1, 1),
            b"hgetall": CommandSpec(self.hgetall, 2, ("readonly",), 1, 1, 1),
            b"hkeys": CommandSpec(self.hkeys, 2, ("readonly",), 1, 1, 1),
            b"hvals": CommandSpec(self.hvals, 2, ("readonly",), 1, 1, 1),
            b"hincrby": CommandSpec(self.hincrby, 4, write, 1, 1, 1),
            b"hincrbyfloat": CommandSpec(self.hincrbyfloat, 4, write, 1, 1, 1),
            b"hrandfield": CommandSpec(self.hrandfield, -2, ("readonly",), 1, 1, 1),
        }

    def lookup_hash(self, key: bytes, out: ReplyBuffer) -> Hash | None | bool:
        return lookup_typed(self.db, key, Hash, out)

    def hash_to_write(self, key: bytes, out: ReplyBuffer) -> Hash | None:
        """The hash at `key`, made if missing; None after replying WRONGTYPE."""
        found = self.lookup_hash(key, out)
        if found is False:
            return None
        if found is None:
            found = Hash()
            self.db.add_entry(key, found)
        return found

    # --- writing fields ------------------------------------------------------------------

    def hset(self, args: list[bytes], out: ReplyBuffer) -> None:
        """HSET key field value [field value ...]: how many fields are new."""
        created = self.set_fields(b"hset", args, out)
        if created is not None:
            out.integer(created)

    def hmset(self, args: list[bytes], out: ReplyBuffer) -> None:
        """HMSET: HSET's old form, which replies OK."""
        if self.set_fields(b"hmset", args, out) is not None:
            out.simple("OK")

    def set_fields(self, name: bytes, args: list[bytes], out: ReplyBuffer) -> int | None:
        if len(args) % 2 == 0:
            out.error(wrong_arity_message(name))
            return None
        hash_ = self.hash_to_write(args[0], out)
        if hash_ is None:
            return None
        created = sum(hash_.set(field, value) for field, value in zip(args[1::2], args[2::2]))
        self.db.notify_keyspace_event("h", "hset", args[0])
        return created

    def hsetnx(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.hash_to_write(args[0], out)
        if hash_ is None:
            return
        if hash_.get(args[1]) is not None:
            out.integer(0)
            return
        hash_.set(args[1], args[2])
        self.db.notify_keyspace_event("h", "hset", args[0])
        out.integer(1)

    def hdel(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is False:
            return
        deleted = 0
        if hash_ is not None:
            for field in args[1:]:
                deleted += hash_.delete(field)
                if not hash_:
                    break
            if deleted:
                self.db.notify_keyspace_event("h", "hdel", args[0])
                delete_if_empty(self.db, args[0], hash_)
        out.integer(deleted)

    def hincrby(self, args: list[bytes], out: ReplyBuffer) -> None:
        increment = parse_integer(args[2])
        if increment is None:
            out.error(NOT_AN_INTEGER)
            return
        hash_ = self.hash_to_write(args[0], out)
        if hash_ is None:
            return
        current = hash_.get(args[1])
        value = 0 if current is None else parse_integer(current)
        if value is None:
            out.error("ERR hash value is not an integer")
        elif not -(2**63) <= value + increment <= LONG_MAX:
            out.error("ERR increment or decrement would overflow")
        else:
            hash_.set(args[1], b"%d" % (value + increment))
            self.db.notify_keyspace_event("h", "hincrby", args[0])
            out.integer(value + increment)
        if not hash_:  # made for this command, which failed: no empty key is left
            delete_if_empty(self.db, args[0], hash_)

    def hincrbyfloat(self, args: list[bytes], out: ReplyBuffer) -> None:
        """In C's long double, as Redis's (and chapter 17's INCRBYFLOAT)."""
        increment = parse_long_double(args[2])
        if increment is None:
            out.error("ERR value is not a valid float")
            return
        if not isinstance(increment, Fraction):
            out.error("ERR value is NaN or Infinity")
            return
        hash_ = self.hash_to_write(args[0], out)
        if hash_ is None:
            return
        current = hash_.get(args[1])
        value = Fraction(0) if current is None else parse_long_double(current)
        result = round_to_long_double(value + increment) if isinstance(value, Fraction) else None
        if value is None:
            out.error("ERR hash value is not a float")
        elif result is None:
            out.error("ERR increment would produce NaN or Infinity")
        else:
            text = format_long_double(result)
            hash_.set(args[1], text)
            self.db.notify_keyspace_event("h", "hincrbyfloat", args[0])
            out.bulk(text)
        if not hash_:
            delete_if_empty(self.db, args[0], hash_)

    # --- reading -------------------------------------------------------------------------

    def hget(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is False:
            return
        value = hash_.get(args[1]) if hash_ else None
        out.null() if value is None else out.bulk(value)

    def hmget(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is False:
            return
        out.array(len(args) - 1)
        for field in args[1:]:
            value = hash_.get(field) if hash_ else None
            out.null() if value is None else out.bulk(value)

    def hlen(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is not False:
            out.integer(len(hash_) if hash_ else 0)

    def hstrlen(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is not False:
            value = hash_.get(args[1]) if hash_ else None
            out.integer(0 if value is None else len(value))

    def hexists(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is not False:
            out.integer(1 if hash_ and hash_.get(args[1]) is not None else 0)

    def hgetall(self, args: list[bytes], out: ReplyBuffer) -> None:
        """Fields and values: a map in RESP3, a flat array in RESP2."""
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is False:
            return
        if not hash_:
            out.map(0)
            return
        out.map(len(hash_))
        for field, value in hash_.items():
            out.bulk(field)
            out.bulk(value)

    def hkeys(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is not False:
            out.bulk_array([field for field, _ in hash_.items()] if hash_ else [])

    def hvals(self, args: list[bytes], out: ReplyBuffer) -> None:
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is not False:
            out.bulk_array([value for _, value in hash_.items()] if hash_ else [])

    def hrandfield(self, args: list[bytes], out: ReplyBuffer) -> None:
        """HRANDFIELD key [count [WITHVALUES]]: a positive count asks for
        distinct fields, a negative one for that many draws, repeats allowed."""
        count, withvalues = None, False
        if len(args) >= 2:
            count = parse_integer(args[1])
            if count is None or count == -(2**63):
                out.error(NOT_AN_INTEGER if count is None else
                          f"ERR value is out of range, value must between {-LONG_MAX} and {LONG_MAX}")  # fmt: skip
                return
            if len(args) > 3 or (len(args) == 3 and args[2].lower() != b"withvalues"):
                out.error("ERR syntax error")
                return
            withvalues = len(args) == 3
            if (withvalues and not -LONG_MAX // 2 <= count <= LONG_MAX // 2) or -count > MAX_RANDOM_DRAWS:
                # Redis's limit with values; ours for draws: a reply must stay bounded.
                out.error("ERR value is out of range")
                return
        hash_ = self.lookup_hash(args[0], out)
        if hash_ is False:
            return
        if count is None:
            out.null() if hash_ is None else out.bulk(hash_.random_item(random)[0])
            return
        if not hash_ or count == 0:
            out.array(0)
            return
        if count < 0:
            pairs = [hash_.random_item(random) for _ in range(-count)]
        elif count >= len(hash_):
            pairs = list(hash_.items())
        else:
            pairs = random.sample(list(hash_.items()), count)
        write_pairs(out, pairs, withvalues)


def write_pairs(out: ReplyBuffer, pairs: list[tuple[bytes, bytes]], withvalues: bool) -> None:
    """Fields, with their values if asked: RESP2 alternates them in one
    array, RESP3 gives each pair its own array (HRANDFIELD, as Redis)."""
    if not withvalues:
        out.bulk_array([field for field, _ in pairs])
        return
    out.array(len(pairs) if out.protocol == 3 else 2 * len(pairs))
    for field, value in pairs:
        if out.protocol == 3:
            out.array(2)
        out.bulk(field)
        out.bulk(value)
