"""Chapter 20 (beyond the book): lists, hashes and sets, each in Redis's
compact and large encodings.

The book builds two types, strings and sorted sets. Redis has three more
that nearly every application uses: lists (queues: a worker waits on
BLPOP), hashes (objects) and sets. Each is a data-structure lesson of its
own, and they share one idea, which chapter 17's small sorted sets
already showed: keep a small value packed in one buffer, where a scan
beats a pointer structure and costs no per-element object, and convert
it, once, past a threshold.

* Lists (common/quicklist.py): Redis's quicklist, a chain of small packed
  nodes (8 KB each, `list-max-listpack-size`), so that pushing and popping
  at either end is O(1) and a long list costs its bytes and a little.
  The commands: common/list_commands.py.
* Hashes (common/hash.py): flat while small (`hash-max-listpack-entries`
  128 fields, `hash-max-listpack-value` 64 bytes), chapter 08's hashtable
  after. The commands: common/hash_commands.py.
* Sets (common/set.py): a sorted array of integers (an intset) while every
  member is one and there are at most `set-max-intset-entries` (512),
  chapter 08's hashtable after. The commands: common/set_commands.py.
* The blocking list pops (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH), on
  chapter 17's machinery: a client waits on keys, first come first served,
  and is served once the write that fed it is over (after EXEC, inside
  a transaction).

OBJECT ENCODING tells which encoding a value is in; TYPE, DEL, UNLINK
(a large value is freed on chapter 14's worker), COPY, RENAME, SCAN's TYPE
filter, WATCH and the keyspace events cover the new types through the
seams of the chapters before; ZUNIONSTORE and its kin read a set as a
sorted set whose scores are all 1, as Redis's do. Snapshots hold every
type in Redis 7.0's formats (common/rdb.py); the AOF logs a pop that
waited, and SPOP's random choice, as the pop they amount to.

Everything else is chapter 19's server, imported unchanged.

    make run-chapter 20
    redis-cli RPUSH queue job1 job2
    redis-cli BLPOP queue 0
    redis-cli HSET user:1 name Ada lang en
    redis-cli SADD tags redis python
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.commands import (  # noqa: E402
    NOT_AN_INTEGER,
    CommandSpec,
    unknown_subcommand_message,
    write_help,
    wrong_arity_message,
)
from common.hash import Hash  # noqa: E402
from common.hash_commands import HashCommands  # noqa: E402
from common.keys import KeyCommands  # noqa: E402
from common.list_commands import ListCommands, parse_lmpop, parse_side  # noqa: E402
from common.quicklist import QuickList  # noqa: E402
from common.rdb import RdbWriter  # noqa: E402
from common.resp import parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402
from common.set import RedisSet, as_integer  # noqa: E402
from common.set_commands import SetCommands  # noqa: E402
from common.zset import ZSet  # noqa: E402
from common.zset_commands import keys_after_numkeys  # noqa: E402
from common.zset_listpack import ListpackNode  # noqa: E402

chapter19 = load_chapter(19)  # the server this chapter extends: pub/sub and everything before
chapter17 = chapter19.chapter18.chapter17  # its blocking machinery
chapter16 = chapter19.chapter16  # its persistence: snapshots and the AOF
chapter14 = chapter19.chapter14  # the keyspace, the command table
snapshots, append_only = chapter16.snapshots, chapter16.append_only

LISTS = ListCommands(chapter14)
HASHES = HashCommands(chapter14)
SETS = SetCommands(chapter14)
KEYS = KeyCommands(chapter14)


# --- blocking list pops -----------------------------------------------------------------
# As chapter 17's BZPOPMIN: pop at once if a key holds a list; else park
# the client on its keys (chapter17.park), to be served by the first
# write that creates one of them, or timed out with a nil reply. What a
# pop did is logged as the LPOP, RPOP or LMOVE it amounts to, as Redis
# does: replaying a blocking command could block the replay.


def blpop(args: list[bytes], out: ReplyBuffer) -> None:
    """BLPOP key [key ...] timeout"""
    pop_or_block(args[:-1], args[-1], out, head=True, count=None)


def brpop(args: list[bytes], out: ReplyBuffer) -> None:
    """BRPOP key [key ...] timeout"""
    pop_or_block(args[:-1], args[-1], out, head=False, count=None)


def blmpop(args: list[bytes], out: ReplyBuffer) -> None:
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]"""
    parsed = parse_lmpop(args[1:], out)
    if parsed is not None:
        keys, head, count = parsed
        pop_or_block(keys, args[0], out, head, count)


def pop_or_block(keys: list[bytes], timeout_text: bytes, out: ReplyBuffer, head: bool, count: int | None) -> None:
    timeout = chapter17.parse_timeout(timeout_text, out)
    if timeout is None:
        return
    found = LISTS.first_nonempty(keys, out)
    if found is False:
        return
    if found is not None:
        pop(found[0], out, head, count, woken=False)
    elif chapter14.current_client.deny_blocking:  # may not wait (inside a transaction): as if timed out
        out.null_array()
    else:
        chapter17.park(keys, timeout, QuickList, lambda key, reply: pop(key, reply, head, count, woken=True))


def pop(key: bytes, out: ReplyBuffer, head: bool, count: int | None, woken: bool) -> None:
    """Pop for a blocking command from the list at `key` (there is one):
    [key, element], or BLMPOP's [key, [elements]]."""
    quicklist = chapter14.lookup_live(key).value
    command = [b"LPOP" if head else b"RPOP", key]
    if count is None:
        out.array(2)
        out.bulk(key)
        out.bulk(quicklist.pop(head))
        LISTS.removed(key, quicklist, head)
    else:
        command.append(b"%d" % LISTS.pop_reply(key, quicklist, head, count, out, with_key=True))
    log(command, woken)


def blmove(args: list[bytes], out: ReplyBuffer) -> None:
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout"""
    from_head, to_head = parse_side(args[2]), parse_side(args[3])
    if from_head is None or to_head is None:
        out.error("ERR syntax error")
        return
    move_or_block(args[0], args[1], from_head, to_head, args[4], out)


def brpoplpush(args: list[bytes], out: ReplyBuffer) -> None:
    """BRPOPLPUSH source destination timeout: BLMOVE source destination RIGHT LEFT timeout."""
    move_or_block(args[0], args[1], False, True, args[2], out)


def move_or_block(source: bytes, destination: bytes, from_head: bool, to_head: bool, timeout_text: bytes,
                  out: ReplyBuffer) -> None:  # fmt: skip
    timeout = chapter17.parse_timeout(timeout_text, out)
    if timeout is None:
        return
    quicklist = LISTS.lookup_list(source, out)
    if quicklist is False:
        return
    if quicklist is not None:
        move(source, destination, from_head, to_head, out, woken=False)
    elif chapter14.current_client.deny_blocking:
        out.null()  # Redis's reply here, where BLPOP's is a null array
    else:
        chapter17.park([source], timeout, QuickList,
                       lambda key, reply: move(source, destination, from_head, to_head, reply, woken=True))  # fmt: skip


def move(source: bytes, destination: bytes, from_head: bool, to_head: bool, out: ReplyBuffer, woken: bool) -> None:
    """Move for BLMOVE from the list at `source` (there is one). The push
    may create the list another client waits on: it is served next."""
    if LISTS.move(source, chapter14.lookup_live(source).value, destination, from_head, to_head, out):
        sides = [b"LEFT" if from_head else b"RIGHT", b"LEFT" if to_head else b"RIGHT"]
        log([b"LMOVE", source, destination, *sides], woken)
        chapter17.signal_key_as_ready(destination)


def log(command: list[bytes], woken: bool) -> None:
    """A pop for a client `woken` after a write is a change of its own
    (chapter 16's propagate); a pop at once is part of its command's."""
    if woken:
        chapter16.propagate(command)
    else:
        append_only.log_command(command[0], command[1:])


# --- sets as sources of the sorted-set operations -----------------------------------------


class SetAsSortedSet:
    """A set read as a sorted set whose every score is 1, as ZUNIONSTORE,
    ZINTER and their kin read a set source (Redis's zuiInitIterator)."""

    __slots__ = ("members",)

    def __init__(self, members: RedisSet) -> None:
        self.members = members

    def __len__(self) -> int:
        return len(self.members)

    def nodes(self) -> Any:
        return (ListpackNode(member, 1.0) for member in self.members)

    def lookup(self, member: bytes) -> ListpackNode | None:
        return ListpackNode(member, 1.0) if member in self.members else None


# --- MEMORY USAGE: what an encoding costs -------------------------------------------------


def memory(args: list[bytes], out: ReplyBuffer) -> None:
    """MEMORY USAGE key [SAMPLES count] | MEMORY HELP: the bytes a key and
    its value take, as Python counts them (sys.getsizeof), the elements of
    a large collection estimated from `count` of them (5; 0: all), as
    Redis's objectComputeSize does. The way to see what a flat encoding
    saves: a hash of 100 fields costs about a third as a listpack."""
    subcommand = args[0].lower()
    if subcommand == b"help" and len(args) == 1:
        write_help(out, "MEMORY", ["USAGE <key> [SAMPLES <count>]",
                                   "    Return memory in bytes used by <key> and its value. Nested values are",
                                   "    sampled up to <count> times (default: 5, 0 means sample all).",
                                   "HELP", "    Prints this help."])  # fmt: skip
        return
    if subcommand != b"usage" or len(args) < 2:
        out.error(unknown_subcommand_message(args[0], "MEMORY") if subcommand != b"usage"
                  else wrong_arity_message(b"memory|usage"))  # fmt: skip
        return
    samples = 5
    if len(args) > 2:
        count = parse_integer(args[3]) if len(args) == 4 and args[2].lower() == b"samples" else None
        if count is None and len(args) == 4 and args[2].lower() == b"samples":
            out.error(NOT_AN_INTEGER)
            return
        if count is None or count < 0:
            out.error("ERR syntax error")
            return
        samples = count or sys.maxsize
    entry = chapter14.lookup_live(args[1])
    if entry is None:
        out.null()
        return
    out.integer(sys.getsizeof(entry) + sys.getsizeof(entry.key) + value_size(entry.value, samples))


def value_size(value: Any, samples: int) -> int:
    """The bytes of a value: its containers, and its elements (estimated from `samples` of them)."""
    if type(value) is bytes:
        return sys.getsizeof(value)
    if isinstance(value, QuickList):  # a few objects per 8 KB node: counted whole
        return sys.getsizeof(value.nodes) + sum(sys.getsizeof(node) + sys.getsizeof(node.data)
                                                + sys.getsizeof(node.sizes) for node in value.nodes)  # fmt: skip
    if isinstance(value, Hash):
        items = ((field, item) for field, item in value.items())
        flat = value.flat is not None
        containers = sys.getsizeof(value.flat) + 2 * sys.getsizeof(value.sizes) if flat else 0
    elif isinstance(value, RedisSet):
        if value.ints is not None:
            return sys.getsizeof(value.ints)
        items, flat, containers = ((member,) for member in value), False, 0
    else:  # a sorted set, in either of chapter 17's encodings
        items = ((node.key, node.score) for node in value.nodes())
        flat, containers = value.encoding == "listpack", 0
    table = getattr(value, "table", None) if not isinstance(value, ZSet) or value.encoding != "listpack" else None
    if table is None and isinstance(value, ZSet) and not flat:
        table = value.members
    if table is not None:
        containers += 8 * table.capacity  # a list slot per bucket
    node_cost = 0 if flat else 64  # a hashtable node (or a sorted set's tree node) per element
    sampled = [sum(map(sys.getsizeof, item)) + node_cost for item in itertools.islice(items, samples)]
    return containers + (sum(sampled) * len(value) // len(sampled) if sampled else 0)


# --- persistence: every type in Redis 7.0's formats ---------------------------------------


def write_list(writer: RdbWriter, key: bytes, quicklist: QuickList, deadline: int | None) -> None:
    writer.list_quicklist(key, list(quicklist.node_items()), deadline)


def write_hash(writer: RdbWriter, key: bytes, hash_: Hash, deadline: int | None) -> None:
    if hash_.encoding == "listpack":
        writer.hash_listpack(key, hash_.items(), deadline)
    else:
        writer.hash(key, len(hash_), hash_.items(), deadline)


def write_set(writer: RdbWriter, key: bytes, members: RedisSet, deadline: int | None) -> None:
    if members.encoding == "intset":
        writer.intset(key, list(members.ints), deadline)
    else:
        writer.set(key, len(members), members, deadline)


def load_hash(pairs: list[tuple[bytes, bytes]]) -> Hash:
    """A hash in the encoding its size calls for now, as Redis loads one."""
    hash_ = Hash()
    if len(pairs) > Hash.max_entries:
        hash_.convert()
    for field, value in pairs:
        hash_.set(field, value)
    return hash_


def load_set(members: list[bytes]) -> RedisSet:
    loaded = RedisSet()
    if len(members) > RedisSet.max_intset_entries or any(as_integer(member) is None for member in members):
        loaded.convert()
    for member in members:
        loaded.add(member)
    return loaded


# --- wiring -----------------------------------------------------------------------------


def set_list_fill(value: int) -> None:
    QuickList.fill = value  # kept as given, as Redis's; the quicklist reads it within [-5, FILL_MAX]


def add_commands() -> None:
    """Chapter 19's commands, and the three types', wired into the seams of the chapters before."""
    chapter19.add_commands()
    commands = chapter14.COMMANDS
    for family in (LISTS, HASHES, SETS):
        commands.add_all(family.specs())
    blocking = ("write", "noscript", "blocking")
    commands.add_all({
        b"blpop": CommandSpec(blpop, -3, blocking, 1, -2, 1),
        b"brpop": CommandSpec(brpop, -3, blocking, 1, -2, 1),
        b"blmpop": CommandSpec(blmpop, -5, blocking, find_keys=keys_after_numkeys(1)),
        b"blmove": CommandSpec(blmove, 6, ("write", "denyoom", "noscript", "blocking"), 1, 2, 1),
        b"brpoplpush": CommandSpec(brpoplpush, 4, ("write", "denyoom", "noscript", "blocking"), 1, 2, 1),
        b"memory": CommandSpec(memory, -2, ("readonly",), 2, 2, 1),
        b"hscan": CommandSpec(lambda args, out: KEYS.scan_collection(args, out, Hash, Hash.scan), -3,
                              ("readonly",), 1, 1, 1),  # fmt: skip
        b"sscan": CommandSpec(lambda args, out: KEYS.scan_collection(args, out, RedisSet, RedisSet.scan), -3,
                              ("readonly",), 1, 1, 1),  # fmt: skip
    })  # fmt: skip
    chapter17.MORE_SORTED_SETS.other_sources[RedisSet] = SetAsSortedSet
    # The settings, under Redis 7's names and the old ones it keeps as aliases.
    config = chapter14.ADMIN.config
    for name in ("list-max-listpack-size", "list-max-ziplist-size"):
        config.add_integer(name, lambda: QuickList.fill, set_list_fill, minimum=-(2**31), maximum=2**31 - 1)
    for name in ("hash-max-listpack-entries", "hash-max-ziplist-entries"):
        config.add_integer(name, lambda: Hash.max_entries, lambda value: setattr(Hash, "max_entries", value))
    for name in ("hash-max-listpack-value", "hash-max-ziplist-value"):
        config.add_integer(name, lambda: Hash.max_value, lambda value: setattr(Hash, "max_value", value),
                           memory=True)  # fmt: skip
    config.add_integer("set-max-intset-entries", lambda: RedisSet.max_intset_entries,
                       lambda value: setattr(RedisSet, "max_intset_entries", value))  # fmt: skip
    # The AOF: blocking pops log what they did; SPOP logs its SREM, LMPOP its LPOP or RPOP; a
    # command that replied 0 changed nothing, and is not logged (nor touches WATCH).
    for name in (b"blpop", b"brpop", b"blmpop", b"blmove", b"brpoplpush", b"spop", b"lmpop"):
        append_only.LOGGED_AS[name] = lambda args: []
    SETS.log_as = LISTS.log_as = lambda commands: [append_only.log_command(c[0], c[1:]) for c in commands]
    chapter16.ZERO_IS_NO_CHANGE.update({b"lrem", b"lpushx", b"rpushx", b"hdel", b"hsetnx", b"sadd", b"srem",
                                        b"smove"})  # fmt: skip
    # Snapshots: how each type is written, and built again when loaded.
    snapshots.VALUE_WRITERS.update({b"list": write_list, b"hash": write_hash, b"set": write_set})
    snapshots.VALUE_BUILDERS.update({b"list": QuickList, b"hash": load_hash, b"set": load_set})


def main() -> None:
    chapter16.serve_chapter("Chapter 20: lists, hashes and sets", chapter19.add_options, add_commands, chapter19.configure)


if __name__ == "__main__":
    main()
