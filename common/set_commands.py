"""Redis's set commands (its t_set.c), on common/set.py.

Introduced in chapter 20 (lists, hashes and sets). A set answers "is it
there?" in O(1) and combines with others: SINTER, SUNION, SDIFF and their
STORE forms, SINTERCARD. A family works on a chapter's keyspace `db`
(chapter 14's module), as common/list_commands.py's does; an empty set is
no key.

SPOP is the one write whose effect is random: replayed from the AOF it
would pop other members. So it is logged as the SREM (or DEL) of what it
popped, as Redis does (its rewriteClientCommandVector and
alsoPropagate): the family tells `log_as`, which a server with a log
sets, and which does nothing otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from common.commands import NOT_AN_INTEGER, CommandSpec, delete_if_empty, lookup_typed, parse_count
from common.resp import parse_integer
from common.resp3 import ReplyBuffer
from common.set import RedisSet
from common.zset_commands import LONG_MAX, MAX_RANDOM_DRAWS, keys_after_numkeys



class SetCommands:
    """SADD, SREM, SMEMBERS, SINTER and the rest of Redis 7.0's set commands (SSCAN is common/keys.py's)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        # What replays this command's change, in its place (SPOP's SREM).
        self.log_as: Callable[[list[list[bytes]]], None] = lambda commands: None

    def specs(self) -> dict[bytes, CommandSpec]:
        read = ("readonly", "fast")
        return {
            b"sadd": CommandSpec(self.sadd, -3, ("write", "denyoom", "fast"), 1, 1, 1),
            b"srem": CommandSpec(self.srem, -3, ("write", "fast"), 1, 1, 1),
            b"smove": CommandSpec(self.smove, 4, ("write", "fast"), 1, 2, 1),
            b"spop": CommandSpec(self.spop, -2, ("write", "fast"), 1, 1, 1),
            b"scard": CommandSpec(self.scard, 2, read, 1, 1, 1),
            b"sismember": CommandSpec(self.sismember, 3, read, 1, 1, 1),
            b"smismember": CommandSpec(self.smismember, -3, read, 1, 1, 1),
            b"smembers": CommandSpec(self.smembers, 2, ("readonly",), 1, 1, 1),
            b"srandmember": CommandSpec(self.srandmember, -2, ("readonly",), 1, 1, 1),
            b"sinter": CommandSpec(self.sinter, -2, ("readonly",), 1, -1, 1),
            b"sintercard": CommandSpec(self.sintercard, -3, ("readonly",), find_keys=keys_after_numkeys(0)),
            b"sinterstore": CommandSpec(self.sinterstore, -3, ("write", "denyoom"), 1, -1, 1),
            b"sunion": CommandSpec(self.sunion, -2, ("readonly",), 1, -1, 1),
            b"sunionstore": CommandSpec(self.sunionstore, -3, ("write", "denyoom"), 1, -1, 1),
            b"sdiff": CommandSpec(self.sdiff, -2, ("readonly",), 1, -1, 1),
            b"sdiffstore": CommandSpec(self.sdiffstore, -3, ("write", "denyoom"), 1, -1, 1),
        }

    def lookup_set(self, key: bytes, out: ReplyBuffer) -> RedisSet | None | bool:
        return lookup_typed(self.db, key, RedisSet, out)

    # --- members -------------------------------------------------------------------------

    def sadd(self, args: list[bytes], out: ReplyBuffer) -> None:
        members = self.lookup_set(args[0], out)
        if members is False:
            return
        if members is None:
            members = RedisSet()
            self.db.add_entry(args[0], members)
        added = sum(members.add(member) for member in args[1:])
        if added:
            self.db.notify_keyspace_event("s", "sadd", args[0])
        out.integer(added)

    def srem(self, args: list[bytes], out: ReplyBuffer) -> None:
        members = self.lookup_set(args[0], out)
        if members is False:
            return
        removed = 0
        if members is not None:
            for member in args[1:]:
                removed += members.remove(member)
                if not members:
                    break
            if removed:
                self.db.notify_keyspace_event("s", "srem", args[0])
                delete_if_empty(self.db, args[0], members)
        out.integer(removed)

    def smove(self, args: list[bytes], out: ReplyBuffer) -> None:
        """SMOVE source destination member"""
        source, destination, member = args
        from_set = self.lookup_set(source, out)
        if from_set is False:
            return
        if from_set is None:
            out.integer(0)
            return
        to_set = self.lookup_set(destination, out)
        if to_set is False:
            return
        if from_set is to_set:
            out.integer(1 if member in from_set else 0)
            return
        if not from_set.remove(member):
            out.integer(0)
            return
        self.db.notify_keyspace_event("s", "srem", source)
        delete_if_empty(self.db, source, from_set)
        if to_set is None:
            to_set = RedisSet()
            self.db.add_entry(destination, to_set)
        if to_set.add(member):
            self.db.notify_keyspace_event("s", "sadd", destination)
        out.integer(1)

    def spop(self, args: list[bytes], out: ReplyBuffer) -> None:
        """SPOP key [count]: random members, removed; logged as their SREM."""
        if len(args) > 2:
            out.error("ERR syntax error")
            return
        count = None
        if len(args) == 2 and (count := parse_count(args[1], out)) is None:
            return
        key = args[0]
        members = self.lookup_set(key, out)
        if members is False:
            return
        if members is None:
            out.null() if count is None else out.set(0)
            return
        if count == 0:
            out.set(0)
            return
        if count is None:
            popped = members.random_member(random)
            members.remove(popped)
            out.bulk(popped)
        elif count >= len(members):
            popped = None
            out.set(len(members))
            for member in members:
                out.bulk(member)
            members.clear()
        else:
            taken = []
            while len(taken) < count:  # each draw removed at once: no repeats
                member = members.random_member(random)
                members.remove(member)
                taken.append(member)
            out.set(len(taken))
            for member in taken:
                out.bulk(member)
            popped = taken
        self.db.notify_keyspace_event("s", "spop", key)
        if popped is None:  # all of it
            self.log_as([[b"DEL", key]])
        else:
            self.log_as([[b"SREM", key, member] for member in ([popped] if count is None else popped)])
        delete_if_empty(self.db, key, members)

    # --- reading -------------------------------------------------------------------------

    def scard(self, args: list[bytes], out: ReplyBuffer) -> None:
        members = self.lookup_set(args[0], out)
        if members is not False:
            out.integer(len(members) if members else 0)

    def sismember(self, args: list[bytes], out: ReplyBuffer) -> None:
        members = self.lookup_set(args[0], out)
        if members is not False:
            out.integer(1 if members and args[1] in members else 0)

    def smismember(self, args: list[bytes], out: ReplyBuffer) -> None:
        members = self.lookup_set(args[0], out)
        if members is False:
            return
        out.array(len(args) - 1)
        for member in args[1:]:
            out.integer(1 if members and member in members else 0)

    def smembers(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.intersection(args, None, out)

    def srandmember(self, args: list[bytes], out: ReplyBuffer) -> None:
        """SRANDMEMBER key [count]: a positive count asks for distinct
        members, a negative one for that many draws, repeats allowed."""
        if len(args) > 2:
            out.error("ERR syntax error")
            return
        count = None
        if len(args) == 2:
            count = parse_integer(args[1])
            if count is None or count == -(2**63):
                out.error(NOT_AN_INTEGER if count is None else
                          f"ERR value is out of range, value must between {-LONG_MAX} and {LONG_MAX}")  # fmt: skip
                return
            if -count > MAX_RANDOM_DRAWS:  # ours: a reply this server builds whole must stay bounded
                out.error("ERR value is out of range")
                return
        members = self.lookup_set(args[0], out)
        if members is False:
            return
        if count is None:
            out.null() if members is None else out.bulk(members.random_member(random))
            return
        if not members or count == 0:
            out.array(0)
        elif count < 0:
            out.bulk_array([members.random_member(random) for _ in range(-count)])
        elif count >= len(members):
            out.bulk_array(list(members))
        else:
            out.bulk_array(random.sample(list(members), count))

    # --- combining sets ------------------------------------------------------------------

    def sets_at(self, keys: list[bytes], out: ReplyBuffer) -> list[RedisSet | None] | None:
        """The sets at `keys` (None where there is no key); None after
        replying WRONGTYPE for a key that holds something else."""
        found = []
        for key in keys:
            members = self.lookup_set(key, out)
            if members is False:
                return None
            found.append(members)
        return found

    def sinter(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.intersection(args, None, out)

    def sinterstore(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.intersection(args[1:], args[0], out)

    def sintercard(self, args: list[bytes], out: ReplyBuffer) -> None:
        """SINTERCARD numkeys key [key ...] [LIMIT limit]"""
        numkeys = parse_integer(args[0])
        if numkeys is None or not 1 <= numkeys:
            out.error("ERR numkeys should be greater than 0")
            return
        if numkeys > len(args) - 1:
            out.error("ERR Number of keys can't be greater than number of args")
            return
        limit = 0
        position = 1 + numkeys
        while position < len(args):
            if args[position].lower() == b"limit" and position + 1 < len(args):
                limit = parse_integer(args[position + 1])
                if limit is None or limit < 0:
                    out.error("ERR LIMIT can't be negative")
                    return
                position += 2
            else:
                out.error("ERR syntax error")
                return
        sets = self.sets_at(args[1 : 1 + numkeys], out)
        if sets is None:
            return
        if not all(sets):
            out.integer(0)
            return
        count = 0
        for _ in intersect(sets):
            count += 1
            if limit and count >= limit:
                break
        out.integer(count)

    def intersection(self, keys: list[bytes], destination: bytes | None, out: ReplyBuffer) -> None:
        """SINTER, SMEMBERS (one key) and SINTERSTORE: the members of the
        smallest set that every other set holds (Redis's sinterGenericCommand)."""
        sets = self.sets_at(keys, out)
        if sets is None:
            return
        found = list(intersect(sets)) if all(sets) else []
        if destination is None:
            out.set(len(found))
            for member in found:
                out.bulk(member)
        else:
            self.store(destination, RedisSet(found), out, "sinterstore")

    def sunion(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.union_or_difference(args, None, out, difference=False)

    def sunionstore(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.union_or_difference(args[1:], args[0], out, difference=False)

    def sdiff(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.union_or_difference(args, None, out, difference=True)

    def sdiffstore(self, args: list[bytes], out: ReplyBuffer) -> None:
        self.union_or_difference(args[1:], args[0], out, difference=True)

    def union_or_difference(self, keys: list[bytes], destination: bytes | None, out: ReplyBuffer,
                            difference: bool) -> None:  # fmt: skip
        """SUNION, SDIFF and their STORE forms, built in a new set (an
        intset while it can be one), as Redis's sunionDiffGenericCommand."""
        sets = self.sets_at(keys, out)
        if sets is None:
            return
        result = RedisSet()
        if difference:
            first, others = sets[0], [members for members in sets[1:] if members]
            if first:
                # The cheaper of Redis's two ways: test each member of the
                # first set against the others, or copy it and remove theirs.
                if len(first) * len(others) // 2 <= sum(map(len, others)):
                    for member in first:
                        if not any(member in members for members in others):
                            result.add(member)
                else:
                    for member in first:
                        result.add(member)
                    for members in others:
                        for member in members:
                            result.remove(member)
        else:
            for members in sets:
                for member in members or ():
                    result.add(member)
        if destination is None:
            out.set(len(result))
            for member in result:
                out.bulk(member)
        else:
            self.store(destination, result, out, "sdiffstore" if difference else "sunionstore")

    def store(self, destination: bytes, result: RedisSet, out: ReplyBuffer, event: str) -> None:
        """Put `result` at `destination`, replacing whatever was there and
        its TTL (Redis's setKey); an empty result deletes it."""
        existing = self.db.lookup_live(destination)
        if existing is not None:
            self.db.delete_entry(existing)
        if result:
            self.db.add_entry(destination, result, overwrite=existing is not None)
            self.db.notify_keyspace_event("s", event, destination)
        elif existing is not None:
            self.db.notify_keyspace_event("g", "del", destination)
        out.integer(len(result))


def intersect(sets: list[RedisSet]) -> Any:
    """The members of the smallest of `sets` that all the others hold, in its order."""
    ordered = sorted(sets, key=len)
    smallest, others = ordered[0], [members for members in ordered[1:] if members is not ordered[0]]
    for member in smallest:
        if all(member in members for members in others):
            yield member
