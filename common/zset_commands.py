"""More of Redis's sorted-set commands, over a chapter's keyspace.

Introduced in chapter 17 (the full API), on chapter 11's sorted set
(common/zset.py: a hashtable of members and an AVL tree ordered by score,
then member). Here: ZPOPMIN, ZPOPMAX, ZMPOP, ZREMRANGEBYRANK,
ZREMRANGEBYSCORE, the lexicographic family ZRANGEBYLEX, ZREVRANGEBYLEX,
ZLEXCOUNT, ZREMRANGEBYLEX, ZRANGE (with BYLEX) and ZRANGESTORE,
ZRANDMEMBER, and the set operations ZUNION, ZINTER, ZDIFF, their STORE
forms (with WEIGHTS and AGGREGATE) and ZINTERCARD.

Lexicographic ranges are meant for sets whose members all have the same
score: the tree's order is then the members' byte order, and a range is a
contiguous run of nodes found by one descent. With mixed scores Redis
calls the result unspecified.

`db` is chapter 14's server module (or anything with its API: lookup_zset,
lookup_live, delete_entry, parse_score_bound, parse_double, nodes_by_rank,
nodes_by_score, nodes_between, score_range_ends, write_members, keyspace,
Entry).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from common.commands import NOT_AN_INTEGER, CommandSpec
from common.resp import parse_integer
from common.resp3 import ReplyBuffer
from common.zset import ZNode, ZSet
from common.zset_listpack import ListpackZSet

BAD_LEX_RANGE = "ERR min or max not valid string range item"
BAD_SCORE_RANGE = "ERR min or max is not a float"
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


def parse_mpop(args: list[bytes], out: ReplyBuffer) -> tuple[list[bytes], bool, int] | None:
    """ZMPOP's (and BZMPOP's) numkeys key [key ...] MIN|MAX [COUNT count]:
    (keys, highest, count), or None after replying Redis's error."""
    numkeys = parse_integer(args[0])
    if numkeys is None or not 1 <= numkeys <= LONG_MAX:
        out.error("ERR numkeys should be greater than 0")
        return None
    where = numkeys + 1
    if where >= len(args) or args[where].lower() not in (b"min", b"max"):
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
    return args[1:where], args[where].lower() == b"max", count or 1


class SortedSetCommands:
    """The sorted-set commands chapter 17 adds to chapter 11's (see the module docstring)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def specs(self) -> dict[bytes, CommandSpec]:
        return {
            b"zpopmin": CommandSpec(self.zpopmin, -2, ("write", "fast"), 1, 1, 1),
            b"zpopmax": CommandSpec(self.zpopmax, -2, ("write", "fast"), 1, 1, 1),
            b"zmpop": CommandSpec(self.zmpop, -4, ("write",)),
            b"zremrangebyrank": CommandSpec(self.zremrangebyrank, 4, ("write",), 1, 1, 1),
            b"zremrangebyscore": CommandSpec(self.zremrangebyscore, 4, ("write",), 1, 1, 1),
            b"zremrangebylex": CommandSpec(self.zremrangebylex, 4, ("write",), 1, 1, 1),
            b"zrangebylex": CommandSpec(self.zrangebylex, -4, ("readonly",), 1, 1, 1),
            b"zrevrangebylex": CommandSpec(self.zrevrangebylex, -4, ("readonly",), 1, 1, 1),
            b"zlexcount": CommandSpec(self.zlexcount, 4, ("readonly", "fast"), 1, 1, 1),
            b"zunion": CommandSpec(self.zunion, -3, ("readonly",)),
            b"zinter": CommandSpec(self.zinter, -3, ("readonly",)),
            b"zdiff": CommandSpec(self.zdiff, -3, ("readonly",)),
            b"zunionstore": CommandSpec(self.zunionstore, -4, ("write", "denyoom"), 1, 1, 1),
            b"zinterstore": CommandSpec(self.zinterstore, -4, ("write", "denyoom"), 1, 1, 1),
            b"zdiffstore": CommandSpec(self.zdiffstore, -4, ("write", "denyoom"), 1, 1, 1),
            b"zintercard": CommandSpec(self.zintercard, -3, ("readonly",)),
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
        if len(args) == 2:
            count = parse_integer(args[1])
            if count is None or count < 0:  # Redis's getPositiveLong: one text for both
                out.error("ERR value is out of range, must be positive")
                return
        # RESP3 nests [member, score] pairs when a count was given, as Redis 7.0.
        self.pop(args[:1], out, highest, count, nested=out.protocol == 3 and count is not None, with_key=False)

    def zmpop(self, args: list[bytes], out: ReplyBuffer) -> None:
        """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]"""
        parsed = parse_mpop(args, out)
        if parsed is not None:
            keys, highest, count = parsed
            self.pop(keys, out, highest, count, nested=True, with_key=True)

    def pop(self, keys: list[bytes], out: ReplyBuffer, highest: bool, count: int | None, nested: bool,
            with_key: bool) -> int:  # fmt: skip
        """Redis's genericZpopCommand: from the first of `keys` that holds a
        set, pop `count` members (None: one, and a flat reply). Returns how
        many it popped."""
        for key in keys:
            zset = self.db.lookup_zset(key, out)
            if zset is False:
                return 0
            if zset is not None:
                break
        else:
            if with_key:  # ZMPOP: a null array
                out += b"_\r\n" if out.protocol == 3 else b"*-1\r\n"
            else:
                out.array(0)
            return 0
        if count == 0:
            out.array(0)
            return 0
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
        if not zset:
            self.db.delete_entry(self.db.lookup_live(key))  # an empty set is no key at all
        return taken

    # --- removing ranges -----------------------------------------------------------------

    def zremrangebyrank(self, args: list[bytes], out: ReplyBuffer) -> None:
        start, stop = parse_integer(args[1]), parse_integer(args[2])
        if start is None or stop is None:
            out.error(NOT_AN_INTEGER)
            return
        self.remove(args[0], out, lambda zset: self.db.nodes_by_rank(zset, start, stop, False))

    def zremrangebyscore(self, args: list[bytes], out: ReplyBuffer) -> None:
        low, high = self.db.parse_score_bound(args[1]), self.db.parse_score_bound(args[2])
        if low is None or high is None:
            out.error(BAD_SCORE_RANGE)
            return
        self.remove(args[0], out, lambda zset: self.db.nodes_by_score(zset, low, high, False, 0, -1))

    def zremrangebylex(self, args: list[bytes], out: ReplyBuffer) -> None:
        low, high = parse_lex_bound(args[1]), parse_lex_bound(args[2])
        if low is None or high is None:
            out.error(BAD_LEX_RANGE)
            return
        self.remove(args[0], out, lambda zset: self.nodes_by_lex(zset, low, high, False, 0, -1))

    def remove(self, key: bytes, out: ReplyBuffer, select: Callable[[ZSet], list[ZNode]]) -> None:
        zset = self.db.lookup_zset(key, out)
        if zset is False:
            return
        if zset is None:
            out.integer(0)
            return
        nodes = select(zset)
        for node in nodes:
            zset.delete(node)
        if not zset:
            self.db.delete_entry(self.db.lookup_live(key))
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
        zset = self.db.lookup_zset(key, out)
        if zset is False:
            return
        nodes = self.nodes_by_lex(zset, low, high, reverse, offset, limit) if zset is not None else []
        self.db.write_members(out, nodes, False)

    def nodes_by_lex(self, zset: ZSet, low: LexBound, high: LexBound, reverse: bool, offset: int,
                     limit: int) -> list[ZNode]:  # fmt: skip
        """Members in the lexicographic range, skipping `offset`, at most `limit` (negative: no limit)."""
        return self.db.nodes_between(zset, *lex_range_ends(zset, low, high), reverse, offset, limit)

    def zlexcount(self, args: list[bytes], out: ReplyBuffer) -> None:
        low, high = parse_lex_bound(args[1]), parse_lex_bound(args[2])
        if low is None or high is None:
            out.error(BAD_LEX_RANGE)
            return
        zset = self.db.lookup_zset(args[0], out)
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
            select = lambda zset: self.db.nodes_by_rank(zset, start, stop, reverse)  # noqa: E731
        elif by == b"score":
            low, high = self.db.parse_score_bound(low_arg), self.db.parse_score_bound(high_arg)
            if low is None or high is None:
                out.error(BAD_SCORE_RANGE)
                return
            select = lambda zset: self.db.nodes_by_score(zset, low, high, reverse, offset, limit)  # noqa: E731
        else:
            low_lex, high_lex = parse_lex_bound(low_arg), parse_lex_bound(high_arg)
            if low_lex is None or high_lex is None:
                out.error(BAD_LEX_RANGE)
                return
            select = lambda zset: self.nodes_by_lex(zset, low_lex, high_lex, reverse, offset, limit)  # noqa: E731
        zset = self.db.lookup_zset(args[0], out)
        if zset is False:
            return
        nodes = select(zset) if zset is not None else []
        if destination is None:
            self.db.write_members(out, nodes, withscores)
            return
        result = ListpackZSet()
        for node in nodes:
            result.add(node.key, node.score)
        self.store(destination, result, out)

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
        zset = self.db.lookup_zset(args[0], out)
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
        self.db.write_members(out, [zset.at(rank) for rank in ranks], withscores)

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
            zset = self.db.lookup_zset(key, out)
            if zset is False:
                return
            sources.append(zset)
        weights = [1.0] * numkeys
        aggregate, withscores, limit = b"sum", False, 0
        options, position = args[1 + numkeys :], 0
        while position < len(options):
            option, remaining = options[position].lower(), len(options) - position
            if option == b"weights" and operation != b"diff" and not count_only and remaining >= numkeys + 1:
                parsed = [self.db.parse_double(weight) for weight in options[position + 1 : position + 1 + numkeys]]
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
            self.store(destination, result, out)
        else:
            self.db.write_members(out, list(result.walk(result.first(), len(result))), withscores)

    def store(self, destination: bytes, result: ListpackZSet, out: ReplyBuffer) -> None:
        """The STORE forms: the result replaces whatever `destination` held
        (and its TTL); an empty result deletes it."""
        existing = self.db.lookup_live(destination)
        if existing is not None:
            self.db.delete_entry(existing)
        if result:
            self.db.keyspace.insert(self.db.Entry(destination, result))
        out.integer(len(result))


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
