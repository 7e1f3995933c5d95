"""Which keys a command reads and which it changes: the flags of Redis 7's key specs.

Part of chapter 21. The command table has known since chapter 07 where a
command's keys are; Redis 7 also says, for each key, what the command
does to it, in flags (Redis's "key specs"):

- one of RO (read only), RW (read and write), OW (overwrite: the old
  value is not read) or RM (remove);
- what happens to the data: access (the value, or part of it, is
  returned or read), insert, delete, update.

Two things use them here. The ACL check asks for read permission (R) for
a key the command accesses, write permission (W) for one it inserts into,
deletes from or updates, as Redis's ACLSelectorCheckKey: COPY needs R on
its source and W on its destination, SINTERSTORE W on the destination
only. And COMMAND GETKEYSANDFLAGS answers them.

Most commands treat every key alike: one flags string. A few name
different keys for different ends (COPY's source and destination,
LMOVE's, SINTERSTORE's destination before its sources): a tuple, one
string per key in order, the last one for every key after it. SET's
depend on its arguments: with GET it reads the old value.
"""

from __future__ import annotations

from common.commands import CommandSpec
from common.zset_commands import keys_after_numkeys


Flags = tuple[str, ...]


def flags_for(names: str, flags: str | tuple[str, ...]) -> dict[bytes, tuple[Flags, ...]]:
    """Each command of `names` -> its keys' flags (split once, here: the ACL check reads them per command)."""
    per_key = tuple(tuple(text.split()) for text in ((flags,) if isinstance(flags, str) else flags))
    return dict.fromkeys((name.encode() for name in names.split()), per_key)


READ = "RO access"  # the value is read
LOOK = "RO"  # only whether it exists, its type, its length or its TTL is looked at
POP = "RW access delete"  # read and removed (pops)
MOVE = ("RW access delete", "RW insert")  # LMOVE's source and destination
STORE = ("OW update", "RO access")  # a destination overwritten from the sources after it

KEY_FLAGS: dict[bytes, tuple[Flags, ...]] = {
    **flags_for("""get getrange substr mget ttl pttl expiretime pexpiretime lrange lindex hget hmget hgetall hkeys hvals
        hrandfield hscan smembers srandmember sinter sintercard sunion sdiff sscan zscore zmscore zrank zrevrank zcount
        zlexcount lpos smismember zrange zrangebyscore zrevrangebyscore zrangebylex zrevrangebylex zrevrange zunion zinter zdiff
        zintercard zrandmember zscan zquery""", READ),
    **flags_for("""exists type strlen touch watch llen hlen hstrlen hexists scard sismember zcard""", LOOK),
    **flags_for("del unlink", "RM delete"),
    **flags_for("lpop rpop lmpop blpop brpop blmpop spop zpopmin zpopmax zmpop bzpopmin bzpopmax bzmpop getdel", POP),
    **flags_for("incr decr incrby decrby incrbyfloat getset getex hincrby hincrbyfloat zincrby", "RW access update"),
    **flags_for("expire pexpire expireat pexpireat persist setrange lset hset hmset zadd", "RW update"),
    **flags_for("append lpush rpush lpushx rpushx linsert hsetnx sadd", "RW insert"),
    **flags_for("lrem ltrim hdel srem zrem zremrangebyscore zremrangebyrank zremrangebylex", "RW delete"),
    **flags_for("setex psetex mset", "OW update"),
    **flags_for("setnx msetnx", "OW insert"),
    **flags_for("lmove blmove rpoplpush brpoplpush smove", MOVE),
    **flags_for("sunionstore sdiffstore zunionstore zinterstore zdiffstore zrangestore", STORE),
    **flags_for("sinterstore", ("RW update", "RO access")),  # so in Redis 7.0, unlike its siblings
    **flags_for("copy", ("RO access", "OW update")),
    **flags_for("rename", ("RW access delete", "OW update")),
    **flags_for("renamenx", ("RW access delete", "OW insert")),
}


# Subcommands with a key, after the subcommand: OBJECT ENCODING key, MEMORY USAGE key.
SUBCOMMAND_KEY_FLAGS = dict.fromkeys(("object|encoding", "object|freq", "memory|usage"), ("RO",))
# Sharded pub/sub names its channels where keys would be (Redis's not_key key specs, for the cluster's
# slots): they are channels, not keys, for ACL and COMMAND GETKEYS.
CHANNELS_AS_KEYS = {b"ssubscribe", b"sunsubscribe", b"spublish"}
# ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: the command table's key positions name the destination only,
# the key a write changes (chapter 18's WATCH touches what they name); the sources are keys too.
sources = keys_after_numkeys(1)
ALL_KEYS = dict.fromkeys((b"zunionstore", b"zinterstore", b"zdiffstore"), lambda args: args[:1] + sources(args))
# A command missing from the table asks for both permissions (the tests check that none is missing).
UNKNOWN = ("RW", "access", "update")
SET_READING, SET_WRITING = ("RW", "access", "update"), ("OW", "update")


def key_flags(name: bytes, args: list[bytes], index: int) -> Flags:
    """The flags of the `index`-th key that `name args...` names."""
    if name == b"set":  # Redis's setGetKeys: SET ... GET reads the value it replaces
        return SET_READING if any(arg.lower() == b"get" for arg in args[2:]) else SET_WRITING
    flags = KEY_FLAGS.get(name, (UNKNOWN,))
    return flags[min(index, len(flags) - 1)]


def has_keys(name: bytes, spec: CommandSpec, subcommand: str = "") -> bool:
    """Whether the command (or container|subcommand) names keys (Redis's doesCommandHaveKeys)."""
    if subcommand:
        return subcommand in SUBCOMMAND_KEY_FLAGS
    return bool(spec.first_key or spec.find_keys) and name not in CHANNELS_AS_KEYS


def keys_with_flags(name: bytes, spec: CommandSpec, args: list[bytes],
                    subcommand: str = "") -> list[tuple[bytes, Flags]]:  # fmt: skip
    """Each key of `name args...` with its flags."""
    if subcommand:
        flags = SUBCOMMAND_KEY_FLAGS.get(subcommand)
        return [(args[1], flags)] if flags is not None and len(args) > 1 else []
    if name in CHANNELS_AS_KEYS:
        return []
    keys = ALL_KEYS[name](args) if name in ALL_KEYS else spec.keys(args)
    return [(key, key_flags(name, args, index)) for index, key in enumerate(keys)]


def permissions_needed(flags: Flags) -> str:
    """What an ACL key pattern must grant for a key with these flags: R to
    access its value, W to insert, delete or update; neither to look at
    it only (TYPE, EXISTS), which any pattern matching the key allows."""
    needed = "R" if "access" in flags else ""
    if "insert" in flags or "delete" in flags or "update" in flags:
        needed += "W"
    return needed
