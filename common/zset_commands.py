"""Redis's sorted-set commands (its t_zset.c), over a chapter's keyspace.

Introduced in chapter 11 (sorted sets). The chapter's lesson is the data
structure beneath them, common/zset.py (a hashtable of members and an AVL
tree ordered by score, then member), and these commands on it: ZADD with
its options, ZRANGE by rank and by score, ZRANK, ZCOUNT in O(log n), the
book's ZQUERY. Chapters 11 to 14 use them as they are, each on its own
keyspace; chapter 17 (the full API) adds the rest of Redis 7.0's, the
second class below.

A family works on a keyspace through three functions a chapter gives it:
`lookup(key)`, the key's entry or None (from chapter 13 on, a key past
its TTL is None); `add(key, value)`, a new entry; `delete(entry)`. Every
entry has a `value`: bytes, or a sorted set.

    SORTED_SETS = SortedSetCommands(lookup_live, add_entry, delete_entry)
    for name, spec in SORTED_SETS.specs().items():
        COMMANDS.add(name, spec)
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from typing import Any

from common.commands import NOT_A_FLOAT, NOT_AN_INTEGER, WRONGTYPE, CommandSpec, parse_count
from common.resp import parse_integer
from common.resp3 import ReplyBuffer
from common.zset import ZNode, ZSet
from common.zset_listpack import ListpackZSet

BOUND_NOT_A_FLOAT = "ERR min or max is not a float"
# What C's strtod reads as a decimal number, as Redis parses scores.
FLOAT_SYNTAX = re.compile(rb"[+-]?(?:inf(?:inity)?|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)", re.IGNORECASE)


def parse_double(data: bytes) -> float | None:
    """A score as Redis reads one: a whole decimal number or inf, not NaN,
    and not so large or small that it overflows to inf or underflows to 0."""
    if not FLOAT_SYNTAX.fullmatch(data):
        return None
    value = float(data)
    mantissa = data.lower().partition(b"e")[0]
    if math.isinf(value) and b"inf" not in mantissa:
        return None  # overflow
    if value == 0.0 and any(digit in b"123456789" for digit in mantissa):
        return None  # underflow
    # Adding +0.0 turns -0 into 0: Redis's compact encoding of small sorted
    # sets keeps scores as text that reads back as 0.
    return value + 0.0


def parse_score_bound(data: bytes) -> tuple[float, bool] | None:
    """A range bound of ZRANGE BYSCORE or ZCOUNT: "1.5", "(1.5" (exclusive),
    "-inf", "+inf". Redis reads these more loosely than scores (leading
    spaces, overflow and an empty string pass); we accept what it accepts."""
    exclusive = data.startswith(b"(")
    text = data[1:] if exclusive else data
    if not text:
        return 0.0, exclusive  # strtod("") reads nothing, which Redis accepts as 0
    text = text.lstrip(b" \t\n\v\f\r")
    if not FLOAT_SYNTAX.fullmatch(text):
        return None
    return float(text), exclusive


def score_range_ends(zset: ZSet, low: tuple[float, bool], high: tuple[float, bool]) -> tuple[ZNode | None, ZNode | None]:
    """The first and last nodes with scores between the bounds, or (None, None)."""
    first = zset.first_in_range(*low)
    last = zset.last_in_range(*high)
    if first is None or last is None or zset.rank(first) > zset.rank(last):
        return None, None
    return first, last


def nodes_by_rank(zset: ZSet, start: int, stop: int, reverse: bool) -> list[ZNode]:
    """Members from rank start to stop inclusive (negative: from the end), in O(log n + k)."""
    size = len(zset)
    start = max(start + size if start < 0 else start, 0)
    stop = min(stop + size if stop < 0 else stop, size - 1)
    if start > stop:
        return []
    count = stop - start + 1
    if reverse:
        return list(zset.walk(zset.at(size - 1 - start), count, -1))
    return list(zset.walk(zset.at(start), count, 1))


def nodes_by_score(
    zset: ZSet, low: tuple[float, bool], high: tuple[float, bool], reverse: bool, offset: int, limit: int
) -> list[ZNode]:
    """Members with scores between the bounds, skipping `offset`, at most
    `limit` (negative: no limit)."""
    return nodes_between(zset, *score_range_ends(zset, low, high), reverse, offset, limit)


def nodes_between(
    zset: ZSet, first: ZNode | None, last: ZNode | None, reverse: bool, offset: int, limit: int
) -> list[ZNode]:
    """The nodes from `first` to `last` (None: no range), skipping `offset`,
    at most `limit`. O(log n + k): the offset is skipped by rank arithmetic
    and one O(log n) seek, not member by member."""
    if first is None or last is None or offset < 0:
        return []
    available = zset.rank(last) - zset.rank(first) + 1 - offset
    count = available if limit < 0 else min(limit, available)
    if count <= 0:
        return []
    start = zset.rank(last) - offset if reverse else zset.rank(first) + offset
    return list(zset.walk(zset.at(start), count, -1 if reverse else 1))


def write_score(out: ReplyBuffer, zset: ZSet | None, member: bytes) -> None:
    """`member`'s score, or nil if it (or the set) is missing."""
    node = zset.lookup(member) if zset is not None else None
    if node is None:
        out.null()
    else:
        out.double(node.score)


def write_members(out: ReplyBuffer, nodes: list[ZNode], withscores: bool) -> None:
    """Members, with their scores if asked: RESP2 alternates member and
    score in one array; RESP3 gives each pair its own array, as Redis."""
    if not withscores:
        out.array(len(nodes))
        for node in nodes:
            out.bulk(node.key)
    elif out.protocol == 3:
        out.array(len(nodes))
        for node in nodes:
            out.array(2)
            out.bulk(node.key)
            out.double(node.score)
    else:
        out.array(2 * len(nodes))
        for node in nodes:
            out.bulk(node.key)
            out.double(node.score)




class SortedSetCommands:
    """Chapter 11's sorted-set commands, on the keyspace reached through
    `lookup`, `add` and `delete` (see the module docstring)."""

    def __init__(self, lookup: Callable[[bytes], Any], add: Callable[[bytes, Any], Any],
                 delete: Callable[[Any], None],
                 notify: Callable[[str, str, bytes], None] = lambda kind, event, key: None) -> None:  # fmt: skip
        self.lookup, self.add, self.delete = lookup, add, delete
        self.notify = notify  # (class, event, key): what a write did, as Redis's notifyKeyspaceEvent
        # What a new sorted set is made of: chapter 11's ZSet, unless a
        # server keeps small sets in another encoding (use_encoding).
        self.new_set: Callable[[], ZSet] = ZSet

    def use_encoding(self, new_set: Callable[[], ZSet]) -> None:
        """Make new sorted sets with `new_set`: a ZSet, or a class that acts as one."""
        self.new_set = new_set

    def specs(self) -> dict[bytes, CommandSpec]:
        return {
            b"zadd": CommandSpec(self.zadd, -4, ("write", "denyoom", "fast"), 1, 1, 1),
            b"zincrby": CommandSpec(self.zincrby, 4, ("write", "denyoom", "fast"), 1, 1, 1),
            b"zrem": CommandSpec(self.zrem, -3, ("write", "fast"), 1, 1, 1),
            b"zscore": CommandSpec(self.zscore, 3, ("readonly", "fast"), 1, 1, 1),
            b"zmscore": CommandSpec(self.zmscore, -3, ("readonly", "fast"), 1, 1, 1),
            b"zcard": CommandSpec(self.zcard, 2, ("readonly", "fast"), 1, 1, 1),
            b"zrank": CommandSpec(self.zrank, 3, ("readonly", "fast"), 1, 1, 1),
            b"zrevrank": CommandSpec(self.zrevrank, 3, ("readonly", "fast"), 1, 1, 1),
            b"zcount": CommandSpec(self.zcount, 4, ("readonly", "fast"), 1, 1, 1),
            b"zrange": CommandSpec(self.zrange, -4, ("readonly",), 1, 1, 1),
            b"zrangebyscore": CommandSpec(self.zrangebyscore, -4, ("readonly",), 1, 1, 1),
            b"zrevrangebyscore": CommandSpec(self.zrevrangebyscore, -4, ("readonly",), 1, 1, 1),
            b"zrevrange": CommandSpec(self.zrevrange, -4, ("readonly",), 1, 1, 1),
            b"zquery": CommandSpec(self.zquery, 6, ("readonly",), 1, 1, 1),  # the book's, see zquery()
        }

    def remove_if_empty(self, key: bytes, zset: ZSet) -> None:
        """An empty sorted set is no key at all, as in Redis."""
        if not zset:
            self.delete(self.lookup(key))
            self.notify("g", "del", key)

    def lookup_zset(self, key: bytes, out: ReplyBuffer) -> ZSet | None | bool:
        """The sorted set at `key`; None if there is no key; False (after
        replying WRONGTYPE) if the key holds something else."""
        entry = self.lookup(key)
        if entry is None:
            return None
        if not isinstance(entry.value, ZSet):
            out.error(WRONGTYPE)
            return False
        return entry.value

    def zadd(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]"""
        self.zadd_generic(args, out, incr=False)

    def zincrby(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZINCRBY key increment member: ZADD key INCR increment member."""
        self.zadd_generic(args, out, incr=True)

    def zadd_generic(self, args: list[bytes], out: ReplyBuffer, incr: bool) -> None:
        key = args[0]
        flags: set[bytes] = set()
        position = 1
        if not incr:  # ZINCRBY takes no options
            while position < len(args) and args[position].lower() in (b"nx", b"xx", b"gt", b"lt", b"ch", b"incr"):
                flags.add(args[position].lower())
                position += 1
            incr = b"incr" in flags
        pairs = args[position:]
        if not pairs or len(pairs) % 2:
            out.error("ERR syntax error")
            return
        nx, xx, gt, lt = (flag in flags for flag in (b"nx", b"xx", b"gt", b"lt"))
        if nx and xx:
            out.error("ERR XX and NX options at the same time are not compatible")
            return
        if (gt and nx) or (lt and nx) or (gt and lt):
            out.error("ERR GT, LT, and/or NX options at the same time are not compatible")
            return
        if incr and len(pairs) > 2:
            out.error("ERR INCR option supports a single increment-element pair")
            return
        scores = [parse_double(score) for score in pairs[0::2]]
        if None in scores:  # checked before anything changes, as Redis does
            out.error(NOT_A_FLOAT)
            return
        zset = self.lookup_zset(key, out)
        if zset is False:
            return
        if zset is None and not xx:
            zset = self.new_set()
            self.add(key, zset)
        added = changed = 0
        processed = False
        score = 0.0
        pending = zip(scores, pairs[1::2]) if zset is not None else []  # no key and XX: nothing to do
        for score, member in pending:
            node = zset.lookup(member)
            if node is None:
                if xx:
                    continue
                zset.add(member, score)
                added += 1
                processed = True
                continue
            if nx:
                continue
            if incr:
                score += node.score
                if math.isnan(score):  # inf + -inf
                    out.error("ERR resulting score is not a number (NaN)")
                    return
            if (lt and score >= node.score) or (gt and score <= node.score):
                continue
            processed = True
            if score != node.score:
                zset.update(node, score)
                changed += 1
        if incr:
            if processed:
                out.double(score)
            else:
                out.null()
        else:
            out.integer(added + changed if b"ch" in flags else added)
        if added or changed:
            self.notify("z", "zincr" if incr else "zadd", key)

    def zrem(self, args: list[bytes], out: ReplyBuffer) -> None:
        zset = self.lookup_zset(args[0], out)
        if zset is False:
            return
        if zset is None:
            out.integer(0)
            return
        removed = 0
        for member in args[1:]:
            node = zset.lookup(member)
            if node is not None:
                zset.delete(node)
                removed += 1
        if removed:
            self.notify("z", "zrem", args[0])
        self.remove_if_empty(args[0], zset)
        out.integer(removed)

    def zscore(self, args: list[bytes], out: ReplyBuffer) -> None:
        zset = self.lookup_zset(args[0], out)
        if zset is not False:
            write_score(out, zset, args[1])

    def zmscore(self, args: list[bytes], out: ReplyBuffer) -> None:
        zset = self.lookup_zset(args[0], out)
        if zset is False:
            return
        out.array(len(args) - 1)
        for member in args[1:]:
            write_score(out, zset, member)

    def zcard(self, args: list[bytes], out: ReplyBuffer) -> None:
        zset = self.lookup_zset(args[0], out)
        if zset is not False:
            out.integer(len(zset) if zset is not None else 0)

    def zrank(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.zrank_generic(args, out, reverse=False)

    def zrevrank(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.zrank_generic(args, out, reverse=True)

    def zrank_generic(self, args: list[bytes], out: ReplyBuffer, reverse: bool) -> None:
        zset = self.lookup_zset(args[0], out)
        if zset is False:
            return
        node = zset.lookup(args[1]) if zset is not None else None
        if node is None:
            out.null()
            return
        rank = zset.rank(node)
        out.integer(len(zset) - 1 - rank if reverse else rank)

    def zcount(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZCOUNT key min max, in O(log n): the difference of two ranks."""
        low, high = parse_score_bound(args[1]), parse_score_bound(args[2])
        if low is None or high is None:
            out.error(BOUND_NOT_A_FLOAT)
            return
        zset = self.lookup_zset(args[0], out)
        if zset is False:
            return
        first, last = score_range_ends(zset, low, high) if zset is not None else (None, None)
        out.integer(0 if first is None else zset.rank(last) - zset.rank(first) + 1)

    def zrange(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZRANGE key start stop [BYSCORE] [REV] [LIMIT offset count] [WITHSCORES]"""
        self.zrange_generic(args, out, by_score=None, reverse=None)

    def zrangebyscore(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]"""
        self.zrange_generic(args, out, by_score=True, reverse=False)

    def zrevrangebyscore(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]"""
        self.zrange_generic(args, out, by_score=True, reverse=True)

    def zrevrange(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZREVRANGE key start stop [WITHSCORES]"""
        self.zrange_generic(args, out, by_score=False, reverse=True)

    def zrange_generic(self, args: list[bytes], out: ReplyBuffer, by_score: bool | None, reverse: bool | None) -> None:
        """Every ZRANGE form. `by_score` and `reverse` are fixed by the legacy
        commands, or None where ZRANGE's options choose them."""
        withscores = False
        offset, limit = 0, -1
        position = 3
        while position < len(args):
            option = args[position].lower()
            if option == b"withscores":
                withscores = True
            elif option == b"limit" and len(args) - position > 2:
                offset, limit = parse_integer(args[position + 1]), parse_integer(args[position + 2])
                if offset is None or limit is None:
                    out.error(NOT_AN_INTEGER)
                    return
                position += 2
            elif option == b"rev" and reverse is None:
                reverse = True
            elif option == b"byscore" and by_score is None:
                by_score = True
            else:  # BYLEX, for lexicographic ranges, is not implemented here
                out.error("ERR syntax error")
                return
            position += 1
        # Redis checks for LIMIT by its count, so "LIMIT 0 -1" passes anywhere.
        if limit != -1 and not by_score:
            out.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
            return
        if by_score:
            low, high = args[2] if reverse else args[1], args[1] if reverse else args[2]
            bounds = parse_score_bound(low), parse_score_bound(high)
            if None in bounds:
                out.error(BOUND_NOT_A_FLOAT)
                return
        else:
            start, stop = parse_integer(args[1]), parse_integer(args[2])
            if start is None or stop is None:
                out.error(NOT_AN_INTEGER)
                return
        zset = self.lookup_zset(args[0], out)
        if zset is False:
            return
        if zset is None:
            nodes = []
        elif by_score:
            nodes = nodes_by_score(zset, *bounds, bool(reverse), offset, limit)
        else:
            nodes = nodes_by_rank(zset, start, stop, bool(reverse))
        write_members(out, nodes, withscores)

    def zquery(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZQUERY key score member offset limit: the book's own range query.

        From the first member at or after (score, member), skip `offset`
        members (which may be negative, to step back) and return up to `limit`
        of them with their scores. Redis's ZRANGE key min +inf BYSCORE LIMIT
        offset count does the same from a score alone.
        """
        score = parse_double(args[1])
        offset, limit = parse_integer(args[3]), parse_integer(args[4])
        if score is None:
            out.error(NOT_A_FLOAT)
            return
        if offset is None or limit is None:
            out.error(NOT_AN_INTEGER)
            return
        zset = self.lookup_zset(args[0], out)
        if zset is False:
            return
        node = zset.seek_ge(score, args[2]) if zset is not None else None
        if node is not None and offset:
            node = zset.offset(node, offset)
        write_members(out, list(zset.walk(node, limit)) if node is not None else [], withscores=True)


# --- chapter 17: the rest of Redis 7.0's sorted-set commands ---------------------------------
# ZPOPMIN, ZPOPMAX, ZMPOP, ZREMRANGEBYRANK, ZREMRANGEBYSCORE, the
# lexicographic family ZRANGEBYLEX, ZREVRANGEBYLEX, ZLEXCOUNT,
# ZREMRANGEBYLEX, ZRANGE (with BYLEX) and ZRANGESTORE, ZRANDMEMBER, and the
# set operations ZUNION, ZINTER, ZDIFF, their STORE forms (with WEIGHTS and
# AGGREGATE) and ZINTERCARD.
#
# Lexicographic ranges are meant for sets whose members all have the same
# score: the tree's order is then the members' byte order, and a range is a
# contiguous run of nodes found by one descent. With mixed scores Redis
# calls the result unspecified.

BAD_LEX_RANGE = "ERR min or max not valid string range item"
LONG_MAX = 2**63 - 1
# ZRANDMEMBER's largest count: Redis streams any size of reply; this server
# builds a reply whole, so a client may not ask for an unbounded one.
MAX_RANDOM_DRAWS = 1_000_000

# A lexicographic bound: (member, exclusive), or one of the two infinities.
MINUS, PLUS = "-", "+"
LexBound = tuple[bytes, bool] | str


def parse_lex_bound(data: bytes) -> LexBound | None:
    """"-", "+", "[member" (inclusive) or "(member" (exclusive); None if none of those."""
    if data in (b"-", b"+"):
        return MINUS if data == b"-" else PLUS
    if data[:1] in (b"[", b"("):
        return data[1:], data[:1] == b"("
    return None


def above_min(member: bytes, low: LexBound) -> bool:
    if low == MINUS:
        return True
    if low == PLUS:
        return False
    value, exclusive = low
    return member > value if exclusive else member >= value


def below_max(member: bytes, high: LexBound) -> bool:
    if high == PLUS:
        return True
    if high == MINUS:
        return False
    value, exclusive = high
    return member < value if exclusive else member <= value


def lex_range_ends(zset: ZSet, low: LexBound, high: LexBound) -> tuple[ZNode | None, ZNode | None]:
    """The first and last node of the range, or (None, None) if it is empty."""
    first = zset.where(lambda member: above_min(member, low))
    last = zset.where(lambda member: below_max(member, high), last=True)
    if first is None or last is None or zset.rank(first) > zset.rank(last):
        return None, None
    return first, last


def parse_mpop(args: list[bytes], out: ReplyBuffer, sides: tuple[bytes, bytes] = (b"min", b"max"),
               ) -> tuple[list[bytes], bool, int] | None:  # fmt: skip
    """ZMPOP's (and BZMPOP's) numkeys key [key ...] MIN|MAX [COUNT count]:
    (keys, highest, count), or None after replying Redis's error. Chapter
    20's LMPOP has the same shape, with other `sides` (the second: True)."""
    numkeys = parse_integer(args[0])
    if numkeys is None or not 1 <= numkeys <= LONG_MAX:
        out.error("ERR numkeys should be greater than 0")
        return None
    where = numkeys + 1
    if where >= len(args) or args[where].lower() not in sides:
        out.error("ERR syntax error")
        return None
    count = None
    position = where + 1
    while position < len(args):
        if count is None and args[position].lower() == b"count" and position + 1 < len(args):
            count = parse_integer(args[position + 1])
            if count is None or count < 1:
                out.error("ERR count should be greater than 0")
                return None
            position += 2
        else:
            out.error("ERR syntax error")
            return None
    return args[1:where], args[where].lower() == sides[1], count or 1


def keys_after_numkeys(position: int) -> Callable[[list[bytes]], list[bytes]]:
    """A CommandSpec's find_keys for a command whose keys follow a numkeys
    argument at `position` among its arguments (ZMPOP's 0, BZMPOP's 1);
    none if numkeys is not a count of keys that are there."""

    def find_keys(args: list[bytes]) -> list[bytes]:
        numkeys = parse_integer(args[position]) if position < len(args) else None
        if numkeys is None or not 0 < numkeys <= len(args) - position - 1:
            return []
        return args[position + 1 : position + 1 + numkeys]

    return find_keys


class MoreSortedSetCommands:
    """The sorted-set commands chapter 17 adds to chapter 11's `sets`, on the same keyspace."""

    def __init__(self, sets: SortedSetCommands) -> None:
        self.sets = sets
        # Other types ZUNION, ZINTER, ZDIFF and their kin read as sorted
        # sets: type -> what reads one so (a server with sets adds them).
        self.other_sources: dict[type, Callable[[Any], Any]] = {}
        # What replays this command's change, in its place (ZMPOP's ZPOPMIN or ZPOPMAX), as common/set_commands.py's.
        self.log_as: Callable[[list[list[bytes]]], None] = lambda commands: None

    def specs(self) -> dict[bytes, CommandSpec]:
        return {
            b"zpopmin": CommandSpec(self.zpopmin, -2, ("write", "fast"), 1, 1, 1),
            b"zpopmax": CommandSpec(self.zpopmax, -2, ("write", "fast"), 1, 1, 1),
            b"zmpop": CommandSpec(self.zmpop, -4, ("write",), find_keys=keys_after_numkeys(0)),
            b"zremrangebyrank": CommandSpec(self.zremrangebyrank, 4, ("write",), 1, 1, 1),
            b"zremrangebyscore": CommandSpec(self.zremrangebyscore, 4, ("write",), 1, 1, 1),
            b"zremrangebylex": CommandSpec(self.zremrangebylex, 4, ("write",), 1, 1, 1),
            b"zrangebylex": CommandSpec(self.zrangebylex, -4, ("readonly",), 1, 1, 1),
            b"zrevrangebylex": CommandSpec(self.zrevrangebylex, -4, ("readonly",), 1, 1, 1),
            b"zlexcount": CommandSpec(self.zlexcount, 4, ("readonly", "fast"), 1, 1, 1),
            b"zunion": CommandSpec(self.zunion, -3, ("readonly",), find_keys=keys_after_numkeys(0)),
            b"zinter": CommandSpec(self.zinter, -3, ("readonly",), find_keys=keys_after_numkeys(0)),
            b"zdiff": CommandSpec(self.zdiff, -3, ("readonly",), find_keys=keys_after_numkeys(0)),
            b"zunionstore": CommandSpec(self.zunionstore, -4, ("write", "denyoom"), 1, 1, 1),
            b"zinterstore": CommandSpec(self.zinterstore, -4, ("write", "denyoom"), 1, 1, 1),
            b"zdiffstore": CommandSpec(self.zdiffstore, -4, ("write", "denyoom"), 1, 1, 1),
            b"zintercard": CommandSpec(self.zintercard, -3, ("readonly",), find_keys=keys_after_numkeys(0)),
            # ZRANGE again, as Redis 7 has it: chapter 14's, plus BYLEX; and ZRANGESTORE.
            b"zrange": CommandSpec(self.zrange, -4, ("readonly",), 1, 1, 1),
            b"zrangestore": CommandSpec(self.zrangestore, -5, ("write", "denyoom"), 1, 2, 1),
            b"zrandmember": CommandSpec(self.zrandmember, -2, ("readonly",), 1, 1, 1),
        }

    # --- popping -----------------------------------------------------------------------

    def zpopmin(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.zpop(args, out, highest=False)

    def zpopmax(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.zpop(args, out, highest=True)

    def zpop(self, args: list[bytes], out: ReplyBuffer, highest: bool) -> None:
        if len(args) > 2:
            out.error("ERR syntax error")
            return
        count = None
        if len(args) == 2 and (count := parse_count(args[1], out)) is None:
            return
        # RESP3 nests [member, score] pairs when a count was given, as Redis 7.0.
        self.pop(args[:1], out, highest, count, nested=out.protocol == 3 and count is not None, with_key=False)

    def zmpop(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]"""
        parsed = parse_mpop(args, out)
        if parsed is not None:
            keys, highest, count = parsed
            key, taken = self.pop(keys, out, highest, count, nested=True, with_key=True)
            if taken:
                self.log_as([[b"ZPOPMAX" if highest else b"ZPOPMIN", key, b"%d" % taken]])  # as Redis propagates it

    def pop(self, keys: list[bytes], out: ReplyBuffer, highest: bool, count: int | None, nested: bool,
            with_key: bool) -> tuple[bytes, int]:  # fmt: skip
        """Redis's genericZpopCommand: from the first of `keys` that holds a
        set, pop `count` members (None: one, and a flat reply). Returns that
        key and how many it popped."""
        for key in keys:
            zset = self.sets.lookup_zset(key, out)
            if zset is False:
                return key, 0
            if zset is not None:
                break
        else:
            if with_key:  # ZMPOP: a null array
                out += b"_\r\n" if out.protocol == 3 else b"*-1\r\n"
            else:
                out.array(0)
            return b"", 0
        if count == 0:
            out.array(0)
            return key, 0
        taken = min(count or 1, len(zset))
        if with_key and nested:  # ZMPOP, BZMPOP: [key, [[member, score], ...]]
            out.array(2)
            out.bulk(key)
            out.array(taken)
        elif with_key:  # BZPOPMIN, BZPOPMAX: [key, member, score]
            out.array(2 * taken + 1)
            out.bulk(key)
        else:  # ZPOPMIN, ZPOPMAX: [member, score, ...], or pairs in RESP3 with a count
            out.array(taken if nested else 2 * taken)
        for _ in range(taken):
            node = zset.last() if highest else zset.first()
            if nested:
                out.array(2)
            out.bulk(node.key)
            out.double(node.score)
            zset.delete(node)
        self.sets.notify("z", "zpopmax" if highest else "zpopmin", key)
        self.sets.remove_if_empty(key, zset)
        return key, taken

    # --- removing ranges -----------------------------------------------------------------

    def zremrangebyrank(self, args: list[bytes], out: ReplyBuffer) -> None:
        start, stop = parse_integer(args[1]), parse_integer(args[2])
        if start is None or stop is None:
            out.error(NOT_AN_INTEGER)
            return
        self.remove(args[0], out, lambda zset: nodes_by_rank(zset, start, stop, False), "zremrangebyrank")

    def zremrangebyscore(self, args: list[bytes], out: ReplyBuffer) -> None:
        low, high = parse_score_bound(args[1]), parse_score_bound(args[2])
        if low is None or high is None:
            out.error(BOUND_NOT_A_FLOAT)
            return
        self.remove(args[0], out, lambda zset: nodes_by_score(zset, low, high, False, 0, -1), "zremrangebyscore")

    def zremrangebylex(self, args: list[bytes], out: ReplyBuffer) -> None:
        low, high = parse_lex_bound(args[1]), parse_lex_bound(args[2])
        if low is None or high is None:
            out.error(BAD_LEX_RANGE)
            return
        self.remove(args[0], out, lambda zset: self.nodes_by_lex(zset, low, high, False, 0, -1), "zremrangebylex")

    def remove(self, key: bytes, out: ReplyBuffer, select: Callable[[ZSet], list[ZNode]], event: str) -> None:
        zset = self.sets.lookup_zset(key, out)
        if zset is False:
            return
        if zset is None:
            out.integer(0)
            return
        nodes = select(zset)
        for node in nodes:
            zset.delete(node)
        if nodes:
            self.sets.notify("z", event, key)
        self.sets.remove_if_empty(key, zset)
        out.integer(len(nodes))

    # --- lexicographic ranges ----------------------------------------------------------------

    def zrangebylex(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZRANGEBYLEX key min max [LIMIT offset count]"""
        self.range_by_lex(args[0], args[1], args[2], args[3:], out, reverse=False)

    def zrevrangebylex(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZREVRANGEBYLEX key max min [LIMIT offset count]"""
        self.range_by_lex(args[0], args[2], args[1], args[3:], out, reverse=True)

    def range_by_lex(self, key: bytes, low_arg: bytes, high_arg: bytes, options: list[bytes], out: ReplyBuffer,
                     reverse: bool) -> None:  # fmt: skip
        offset, limit, withscores = 0, -1, False
        position = 0
        while position < len(options):
            option = options[position].lower()
            if option == b"limit" and position + 2 < len(options):
                offset, limit = parse_integer(options[position + 1]), parse_integer(options[position + 2])
                if offset is None or limit is None:
                    out.error(NOT_AN_INTEGER)
                    return
                position += 3
            elif option == b"withscores":
                withscores = True
                position += 1
            else:
                out.error("ERR syntax error")
                return
        if withscores:
            out.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
            return
        low, high = parse_lex_bound(low_arg), parse_lex_bound(high_arg)
        if low is None or high is None:
            out.error(BAD_LEX_RANGE)
            return
        zset = self.sets.lookup_zset(key, out)
        if zset is False:
            return
        nodes = self.nodes_by_lex(zset, low, high, reverse, offset, limit) if zset is not None else []
        write_members(out, nodes, False)

    def nodes_by_lex(self, zset: ZSet, low: LexBound, high: LexBound, reverse: bool, offset: int,
                     limit: int) -> list[ZNode]:  # fmt: skip
        """Members in the lexicographic range, skipping `offset`, at most `limit` (negative: no limit)."""
        return nodes_between(zset, *lex_range_ends(zset, low, high), reverse, offset, limit)

    def zlexcount(self, args: list[bytes], out: ReplyBuffer) -> None:
        low, high = parse_lex_bound(args[1]), parse_lex_bound(args[2])
        if low is None or high is None:
            out.error(BAD_LEX_RANGE)
            return
        zset = self.sets.lookup_zset(args[0], out)
        if zset is False:
            return
        first, last = lex_range_ends(zset, low, high) if zset is not None else (None, None)
        out.integer(0 if first is None or last is None else zset.rank(last) - zset.rank(first) + 1)

    # --- ZRANGE with BYLEX, and ZRANGESTORE ------------------------------------------------------

    def zrange(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"""
        self.range_generic(args, out, destination=None)

    def zrangestore(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZRANGESTORE destination source min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]"""
        self.range_generic(args[1:], out, destination=args[0])

    def range_generic(self, args: list[bytes], out: ReplyBuffer, destination: bytes | None) -> None:
        """Redis's zrangeGenericCommand: the options, then their conflicts,
        then the range, then the key; checked in that order."""
        withscores, reverse, by = False, False, b"rank"
        offset, limit = 0, -1
        position = 3
        while position < len(args):
            option = args[position].lower()
            if option == b"withscores" and destination is None:
                withscores = True
            elif option == b"limit" and len(args) - position > 2:
                offset, limit = parse_integer(args[position + 1]), parse_integer(args[position + 2])
                if offset is None or limit is None:
                    out.error(NOT_AN_INTEGER)
                    return
                position += 2
            elif option == b"rev" and not reverse:
                reverse = True
            elif option in (b"byscore", b"bylex") and by == b"rank":
                by = option[2:]
            else:
                out.error("ERR syntax error")
                return
            position += 1
        # Redis checks for LIMIT by its count, so "LIMIT 0 -1" passes anywhere.
        if limit != -1 and by == b"rank":
            out.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
            return
        if withscores and by == b"lex":
            out.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
            return
        low_arg, high_arg = (args[2], args[1]) if reverse and by != b"rank" else (args[1], args[2])
        if by == b"rank":
            start, stop = parse_integer(args[1]), parse_integer(args[2])
            if start is None or stop is None:
                out.error(NOT_AN_INTEGER)
                return
            select = lambda zset: nodes_by_rank(zset, start, stop, reverse)  # noqa: E731
        elif by == b"score":
            low, high = parse_score_bound(low_arg), parse_score_bound(high_arg)
            if low is None or high is None:
                out.error(BOUND_NOT_A_FLOAT)
                return
            select = lambda zset: nodes_by_score(zset, low, high, reverse, offset, limit)  # noqa: E731
        else:
            low_lex, high_lex = parse_lex_bound(low_arg), parse_lex_bound(high_arg)
            if low_lex is None or high_lex is None:
                out.error(BAD_LEX_RANGE)
                return
            select = lambda zset: self.nodes_by_lex(zset, low_lex, high_lex, reverse, offset, limit)  # noqa: E731
        zset = self.sets.lookup_zset(args[0], out)
        if zset is False:
            return
        nodes = select(zset) if zset is not None else []
        if destination is None:
            write_members(out, nodes, withscores)
            return
        result = ListpackZSet()
        for node in nodes:
            result.add(node.key, node.score)
        self.store(destination, result, out, "zrangestore")

    # --- ZRANDMEMBER ------------------------------------------------------------------------

    def zrandmember(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZRANDMEMBER key [count [WITHSCORES]]: a positive count asks for
        distinct members, a negative one for that many draws, repeats allowed."""
        count = None
        withscores = False
        if len(args) >= 2:
            count = parse_integer(args[1])
            if count is None:
                out.error(NOT_AN_INTEGER)
                return
            if count == -(2**63):
                out.error(f"ERR value is out of range, value must between {-LONG_MAX} and {LONG_MAX}")
                return
            if len(args) > 3 or (len(args) == 3 and args[2].lower() != b"withscores"):
                out.error("ERR syntax error")
                return
            withscores = len(args) == 3
            if (withscores and not -LONG_MAX // 2 <= count <= LONG_MAX // 2) or abs(count) > MAX_RANDOM_DRAWS:
                # Redis's limit with scores; ours for any count: a reply must stay bounded.
                out.error("ERR value is out of range")
                return
        zset = self.sets.lookup_zset(args[0], out)
        if zset is False:
            return
        if count is None:
            if zset is None:
                out.null()
            else:
                out.bulk(zset.at(random.randrange(len(zset))).key)
            return
        if zset is None or count == 0:
            out.array(0)
            return
        if count > 0:
            ranks = random.sample(range(len(zset)), min(count, len(zset)))
        else:
            ranks = [random.randrange(len(zset)) for _ in range(-count)]
        write_members(out, [zset.at(rank) for rank in ranks], withscores)

    # --- set operations -------------------------------------------------------------------

    def zunion(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_operation(b"zunion", None, args, out)

    def zinter(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_operation(b"zinter", None, args, out)

    def zdiff(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_operation(b"zdiff", None, args, out)

    def zunionstore(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_operation(b"zunionstore", args[0], args[1:], out)

    def zinterstore(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_operation(b"zinterstore", args[0], args[1:], out)

    def zdiffstore(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_operation(b"zdiffstore", args[0], args[1:], out)

    def zintercard(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.set_operation(b"zintercard", None, args, out)

    def set_operation(self, name: bytes, destination: bytes | None, args: list[bytes], out: ReplyBuffer) -> None:
        """Redis's zunionInterDiffGenericCommand: numkeys key [key ...], then
        WEIGHTS w [w ...], AGGREGATE SUM|MIN|MAX, WITHSCORES or LIMIT, as
        each command allows; checked in Redis's order."""
        operation = {b"u": b"union", b"i": b"inter", b"d": b"diff"}[name[1:2]]  # zunion..., zinter..., zdiff...
        count_only = name == b"zintercard"
        numkeys = parse_integer(args[0])
        if numkeys is None:
            out.error(NOT_AN_INTEGER)
            return
        if numkeys < 1:
            out.error(f"ERR at least 1 input key is needed for '{name.decode()}' command")
            return
        if numkeys > len(args) - 1:
            out.error("ERR syntax error")
            return
        sources: list[ZSet | None] = []
        for key in args[1 : 1 + numkeys]:
            entry = self.sets.lookup(key)
            read_as_zset = self.other_sources.get(type(entry.value)) if entry is not None else None
            if read_as_zset is not None:
                sources.append(read_as_zset(entry.value))
                continue
            zset = self.sets.lookup_zset(key, out)
            if zset is False:
                return
            sources.append(zset)
        weights = [1.0] * numkeys
        aggregate, withscores, limit = b"sum", False, 0
        options, position = args[1 + numkeys :], 0
        while position < len(options):
            option, remaining = options[position].lower(), len(options) - position
            if option == b"weights" and operation != b"diff" and not count_only and remaining >= numkeys + 1:
                parsed = [parse_double(weight) for weight in options[position + 1 : position + 1 + numkeys]]
                if None in parsed:
                    out.error("ERR weight value is not a float")
                    return
                weights = parsed
                position += 1 + numkeys
            elif option == b"aggregate" and operation != b"diff" and not count_only and remaining >= 2:
                aggregate = options[position + 1].lower()
                if aggregate not in (b"sum", b"min", b"max"):
                    out.error("ERR syntax error")
                    return
                position += 2
            elif option == b"withscores" and destination is None and not count_only:
                withscores = True
                position += 1
            elif option == b"limit" and count_only and remaining >= 2:
                limit = parse_integer(options[position + 1])
                if limit is None or limit < 0:
                    out.error("ERR LIMIT can't be negative")
                    return
                position += 2
            else:
                out.error("ERR syntax error")
                return
        result = combine(operation, sources, weights, aggregate, count_only, limit)
        if count_only:
            out.integer(result)
        elif destination is not None:
            self.store(destination, result, out, name.decode())
        else:
            write_members(out, list(result.walk(result.first(), len(result))), withscores)

    def store(self, destination: bytes, result: ListpackZSet, out: ReplyBuffer, event: str) -> None:
        """The STORE forms: the result replaces whatever `destination` held
        (and its TTL); an empty result deletes it."""
        existing = self.sets.lookup(destination)
        if existing is not None:
            self.sets.delete(existing)
        if result and existing is not None:
            self.sets.add(destination, result, overwrite=True)  # not a new key: no "new" event, as Redis's setKey
        elif result:
            self.sets.add(destination, result)
        out.integer(len(result))
        if result:
            self.sets.notify("z", event, destination)
        elif existing is not None:
            self.sets.notify("g", "del", destination)


def combine(operation: bytes, sources: list[ZSet | None], weights: list[float], aggregate: bytes,
            count_only: bool, limit: int) -> Any:  # fmt: skip
    """The union, intersection or difference of `sources` (None: an empty
    set), as Redis computes it: sources smallest first (a stable sort, so
    floating-point sums add up in Redis's order), a weighted score, NaN
    (inf * 0, inf - inf) counted as 0 where Redis checks for it. With `count_only`, the intersection's
    size, stopping at `limit` (0: no limit)."""
    inputs = list(zip(sources, weights))
    if operation != b"diff":
        inputs.sort(key=lambda source: len(source[0]) if source[0] is not None else 0)
    result = ListpackZSet()
    first, first_weight = inputs[0]
    if operation == b"inter":
        cardinality = 0
        for node in (first.nodes() if first is not None else ()):
            score = weighted(node.score, first_weight)
            for other, weight in inputs[1:]:
                found = node if other is first else (other.lookup(node.key) if other is not None else None)
                if found is None:
                    break
                # Only the first source's product is cleaned of NaN: a later one
                # goes into the sum as it is, and NaN there makes the total 0.
                score = aggregated(score, found.score * weight, aggregate)
            else:
                cardinality += 1
                if count_only and limit and cardinality >= limit:
                    break
                if not count_only:
                    result.add(node.key, score)
        return cardinality if count_only else result
    if operation == b"union":
        scores: dict[bytes, float] = {}
        for source, weight in inputs:
            for node in (source.nodes() if source is not None else ()):
                score = weighted(node.score, weight)
                scores[node.key] = aggregated(scores[node.key], score, aggregate) if node.key in scores else score
        for member, score in scores.items():
            result.add(member, score)
        return result
    for node in (first.nodes() if first is not None else ()):  # diff: the first's members in no other
        if not any(other is not None and other.lookup(node.key) is not None for other, _ in inputs[1:]):
            result.add(node.key, node.score)
    return result


def weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if value != value else value  # NaN (inf * 0) counts as 0, as Redis


def aggregated(current: float, value: float, aggregate: bytes) -> float:
    if aggregate == b"sum":
        total = current + value
        return 0.0 if total != total else total  # inf + -inf: 0, as Redis
    return min(current, value) if aggregate == b"min" else max(current, value)
