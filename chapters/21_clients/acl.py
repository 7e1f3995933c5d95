"""Users, and what each may do: Redis 7.0's ACL.

Part of chapter 21. A user has a name, is on or off, has passwords (kept
as SHA-256 digests only) or needs none (nopass), and three lists of what
it may touch: commands (by name, by subcommand, or by category: @read,
@write, @dangerous...), keys (glob patterns, each for reading, writing or
both: ~pattern, %R~pattern, %W~pattern), and pub/sub channels (&pattern).
`default` is the user every connection starts as; AUTH and HELLO switch
to another.

Before every command (`check`, one of chapter 14's checks, where Redis's
processCommand calls ACLCheckAllPerm) the client's user is asked three
questions: may it run this command, may it use these keys (found from the
command table's key positions; key_specs.py says whether the command
reads a key, needing R, or changes it, needing W), these channels? A "no"
is a -NOPERM error and an entry in the ACL LOG. For the default user with
everything allowed, the check is one attribute test.

Rules (ACL SETUSER user rule rule ...) are applied in order to a copy of
the user, which replaces it only if every rule was valid, so a failed
SETUSER changes nothing. The command rules are kept as given, each
command or category once, its last form winning (as Redis 7.2 describes
them; 7.0 recomputes a description from a bitmap of its 240 commands,
which this server does not have all of).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from common.chapters import load_chapter_module
from common.commands import CommandSpec
from common.glob import compile_glob
from common.resp import parse_integer

key_specs = load_chapter_module(21, "key_specs")  # what a command does to each of its keys

# Redis 7.0's categories, in its order (ACL CAT).
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
              "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
              "transaction", "scripting")  # fmt: skip
# The categories Redis's command table gives each command beyond those its flags imply (its JSON files' acl_categories).
FAMILIES = {
    "keyspace": "del unlink exists type keys dbsize expire pexpire expireat pexpireat expiretime pexpiretime ttl pttl "
                "persist rename renamenx copy randomkey touch scan object flushdb flushall move",
    "string": "get set setnx setex psetex getset getdel getex append strlen getrange substr setrange mget mset msetnx "
              "incr incrby decr decrby incrbyfloat lcs",
    "list": "lpush rpush lpushx rpushx lpop rpop lmpop llen lindex lset lrange ltrim linsert lrem lpos lmove rpoplpush "
            "blpop brpop blmpop blmove brpoplpush",
    "hash": "hset hmset hsetnx hget hmget hdel hlen hstrlen hexists hgetall hkeys hvals hincrby hincrbyfloat hrandfield "
            "hscan",
    "set": "sadd srem smove spop scard sismember smismember smembers srandmember sinter sintercard sinterstore sunion "
           "sunionstore sdiff sdiffstore sscan",
    "sortedset": "zadd zincrby zrem zscore zmscore zcard zrank zrevrank zcount zrange zrangebyscore zrevrangebyscore "
                 "zrevrange zquery zpopmin zpopmax zmpop bzpopmin bzpopmax bzmpop zremrangebyrank zremrangebyscore "
                 "zremrangebylex zrangebylex zrevrangebylex zlexcount zunion zinter zdiff zunionstore zinterstore "
                 "zdiffstore zintercard zrangestore zrandmember zscan",
    "connection": "ping echo hello auth command quit reset select wait",
    "transaction": "multi exec discard watch unwatch",
    "admin": "lastsave role",
    "dangerous": "keys flushdb flushall monitor info save bgsave bgrewriteaof shutdown lastsave debug role",
}  # fmt: skip
FAMILY_OF = {name.encode(): {family for family, names in FAMILIES.items() if name in names.split()}
             for names in FAMILIES.values() for name in names.split()}  # fmt: skip


# A container command's subcommands each have categories of their own, as
# in Redis's command table: "admin dangerous" for those an operator runs.
_OPERATOR = {"slow", "admin", "dangerous"}
SUBCOMMAND_CATEGORIES: dict[str, set[str]] = {
    **{f"acl|{sub}": _OPERATOR for sub in "deluser dryrun getuser list load log save setuser users".split()},
    **{f"acl|{sub}": {"slow"} for sub in "cat genpass help whoami".split()},
    **{f"client|{sub}": _OPERATOR | {"connection"} for sub in "kill list no-evict pause unblock unpause".split()},
    **{f"client|{sub}": {"slow", "connection"} for sub in "getname help id info reply setname setinfo".split()},
    **{f"command|{sub}": {"slow", "connection"} for sub in "count docs getkeys getkeysandflags help info list".split()},
    **{f"config|{sub}": _OPERATOR for sub in "get resetstat rewrite set".split()},
    "config|help": {"slow"}, "memory|usage": {"slow", "read"}, "memory|help": {"slow"},
    **{f"object|{sub}": {"slow", "keyspace", "read"} for sub in "encoding freq".split()},
    "object|help": {"slow", "keyspace"},
    **{f"pubsub|{sub}": {"slow", "pubsub"} for sub in "channels numpat numsub shardchannels shardnumsub".split()},
    "pubsub|help": {"slow"},
    **{f"slowlog|{sub}": _OPERATOR for sub in "get len reset".split()}, "slowlog|help": {"slow"},
    "script|kill": {"slow", "scripting"}, "script|help": {"slow", "scripting"},
}  # fmt: skip


def subcommand_categories(full: str) -> set[str] | None:
    """The categories of `container|sub`, or None if there is no such subcommand."""
    return SUBCOMMAND_CATEGORIES.get(full)


def categories_of(name: bytes, spec: CommandSpec) -> set[str]:
    """A command's categories: those its flags imply (Redis's
    setImplicitACLCategories), and its family's."""
    found = set(FAMILY_OF.get(name, ()))
    flags = spec.flags
    if "write" in flags:
        found.add("write")
    if "readonly" in flags:
        found.add("read")
    if "admin" in flags:
        found |= {"admin", "dangerous"}
    if "pubsub" in flags:
        found.add("pubsub")
    if "blocking" in flags:
        found.add("blocking")
    found.add("fast" if "fast" in flags else "slow")
    return found


def digest_hex(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


@dataclass(eq=False)
class User:
    """One user (Redis's user struct, without selectors)."""

    name: bytes
    enabled: bool = False
    nopass: bool = False
    digests: list[str] = field(default_factory=list)  # SHA-256, hex, in the order given
    command_rules: dict[str, bool] = field(default_factory=dict)  # "get" / "@read" / "client|list" -> allowed; in order
    all_commands: bool = False  # +@all: every command, those to come too
    key_patterns: list[tuple[bytes, str]] = field(default_factory=list)  # (pattern, "R", "W" or "RW")
    all_keys: bool = False
    channel_patterns: list[bytes] = field(default_factory=list)
    all_channels: bool = False
    payload: str = ""  # "sanitize-payload" or "skip-sanitize-payload" once set (RESTORE's checks; no RESTORE here)
    decisions: dict[str | bytes, bool] = field(default_factory=dict)  # command -> may run it (may_run's memory)
    compiled_keys: list | None = None  # key_matchers' memory

    def copy(self) -> User:
        return User(self.name, self.enabled, self.nopass, list(self.digests), dict(self.command_rules),
                    self.all_commands, list(self.key_patterns), self.all_keys, list(self.channel_patterns),
                    self.all_channels, self.payload)  # fmt: skip

    def unrestricted(self) -> bool:
        return self.all_commands and not self.command_rules and self.all_keys and self.all_channels

    def accepts(self, password: bytes) -> bool:
        if not self.enabled:
            return False
        if self.nopass:
            return True
        given = digest_hex(password)
        matched = False
        for known in self.digests:  # every digest compared: the time does not tell which matched
            matched |= hmac.compare_digest(given, known)
        return matched


def new_default_user() -> User:
    return User(b"default", enabled=True, nopass=True, all_commands=True, all_keys=True, all_channels=True)


users: dict[bytes, User] = {b"default": new_default_user()}
LOG_MAX = 128  # acllog-max-len


# --- ACL SETUSER's rules ---------------------------------------------------------------------


class RuleError(Exception):
    """A rule that cannot be applied; the message is Redis's."""


SYNTAX = "Syntax error"
UNKNOWN = "Unknown command or category name in ACL"


def apply_rules(user: User, rules: Iterable[bytes], commands: dict[bytes, CommandSpec]) -> User:
    """`user` with `rules` applied, as a new User; RuleError (naming the
    rule) if one is not valid, and then nothing changed."""
    changed = user.copy()
    for rule in rules:
        try:
            apply_rule(changed, rule, commands)
        except RuleError as error:
            raise RuleError(f"Error in ACL SETUSER modifier '{rule.decode(errors='replace')}': {error}") from None
    return changed


def apply_rule(user: User, rule: bytes, commands: dict[bytes, CommandSpec]) -> None:
    lowered = rule.lower()
    if lowered == b"on":
        user.enabled = True
    elif lowered == b"off":
        user.enabled = False
    elif lowered == b"nopass":
        user.nopass, user.digests = True, []
    elif lowered == b"resetpass":
        user.nopass, user.digests = False, []
    elif rule[:1] in (b">", b"<"):
        hexed = digest_hex(rule[1:])
        remove_or_add_password(user, hexed, add=rule[:1] == b">")
    elif rule[:1] in (b"#", b"!"):
        hexed = rule[1:].decode(errors="replace")
        if len(hexed) != 64 or any(character not in "0123456789abcdef" for character in hexed):
            raise RuleError("The password hash must be exactly 64 characters and contain only lowercase "
                            "hexadecimal characters")  # fmt: skip
        remove_or_add_password(user, hexed, add=rule[:1] == b"#")
    elif lowered in (b"allkeys", b"~*"):
        user.all_keys, user.key_patterns = True, []
    elif lowered == b"resetkeys":
        user.all_keys, user.key_patterns = False, []
    elif rule[:1] in (b"~", b"%"):
        add_key_pattern(user, rule)
    elif lowered in (b"allchannels", b"&*"):
        user.all_channels, user.channel_patterns = True, []
    elif lowered == b"resetchannels":
        user.all_channels, user.channel_patterns = False, []
    elif rule[:1] == b"&":
        if user.all_channels:
            raise RuleError("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
                            "not have any effect. Try 'resetchannels' to start with an empty list of channels")  # fmt: skip
        if b" " in rule:
            raise RuleError(SYNTAX)
        if rule[1:] not in user.channel_patterns:
            user.channel_patterns.append(rule[1:])
    elif lowered in (b"allcommands", b"+@all"):
        user.all_commands, user.command_rules = True, {}
    elif lowered in (b"nocommands", b"-@all"):
        user.all_commands, user.command_rules = False, {}
    elif rule[:1] in (b"+", b"-"):
        add_command_rule(user, rule, commands)
    elif lowered in (b"sanitize-payload", b"skip-sanitize-payload"):
        user.payload = lowered.decode()
    elif lowered == b"reset":
        reset = User(user.name, payload="sanitize-payload")
        user.__dict__.update(reset.__dict__)
    else:
        raise RuleError(SYNTAX)


def remove_or_add_password(user: User, hexed: str, add: bool) -> None:
    if add:
        if hexed not in user.digests:
            user.digests.append(hexed)
        user.nopass = False
    elif hexed in user.digests:
        user.digests.remove(hexed)
        user.nopass = False
    else:
        raise RuleError("The password you are trying to remove from the user does not exist")


def add_key_pattern(user: User, rule: bytes) -> None:
    if user.all_keys:
        raise RuleError("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
                        "have any effect. Try 'resetkeys' to start with an empty list of patterns")  # fmt: skip
    if rule[:1] == b"~":
        permission, pattern = "RW", rule[1:]
    else:
        flags, tilde, pattern = rule[1:].partition(b"~")
        letters = flags.upper().decode(errors="replace")
        if not tilde or not letters or any(letter not in "RW" for letter in letters) or len(set(letters)) != len(letters):
            raise RuleError(SYNTAX)
        permission = "".join(letter for letter in "RW" if letter in letters)
    if b" " in pattern:
        raise RuleError(SYNTAX)
    for index, (known, granted) in enumerate(user.key_patterns):
        if known == pattern:  # the same pattern again: its permissions join
            user.key_patterns[index] = (known, "".join(letter for letter in "RW" if letter in granted + permission))
            return
    user.key_patterns.append((pattern, permission))


def add_command_rule(user: User, rule: bytes, commands: dict[bytes, CommandSpec]) -> None:
    allowed = rule[:1] == b"+"
    name = rule[1:].lower().decode(errors="replace")
    if name.startswith("@"):
        if name[1:] not in CATEGORIES:
            raise RuleError(UNKNOWN)
    elif "|" in name:
        container, _, subcommand = name.partition("|")
        if container.encode() not in commands:
            raise RuleError(UNKNOWN)
        if not subcommand:
            raise RuleError(SYNTAX)
        if not allowed:
            raise RuleError(UNKNOWN)  # Redis 7.0 knows -container|sub only for real subcommands: refused here too
    elif name.encode() not in commands:
        raise RuleError(UNKNOWN)
    if name.startswith("@"):  # a category overrides what came before on its commands: those rules go
        for rule in [rule for rule in user.command_rules if not rule.startswith("@")]:
            spec = commands.get(rule.partition("|")[0].encode())
            if name == "@all" or (spec is not None and name[1:] in categories_of(rule.partition("|")[0].encode(), spec)):
                del user.command_rules[rule]
    user.command_rules.pop(name, None)  # its last form wins, and goes last
    user.command_rules[name] = allowed


# --- the check before every command ----------------------------------------------------------


# The commands this server has subcommands for: those SUBCOMMAND_CATEGORIES names.
CONTAINERS = {full.partition("|")[0].encode() for full in SUBCOMMAND_CATEGORIES}
MAX_DECISIONS = 1024  # a user's remembered verdicts (subcommand names come from clients: bounded)


def full_name(name: bytes, args: list[bytes]) -> str:
    """The command's name as rules and errors give it: client|list for a subcommand."""
    if name in CONTAINERS and args:
        return f"{name.decode(errors='replace')}|{args[0].lower().decode(errors='replace')}"
    return name.decode(errors="replace")


def may_run(user: User, name: bytes, spec: CommandSpec, args: list[bytes]) -> bool:
    """Whether `user` may run the command: the last rule that names it,
    its subcommand or one of its categories decides; with none, +@all does.
    Worked out once per user and command, then remembered (the rules of a
    user never change: SETUSER makes a new User)."""
    if (user.all_commands and not user.command_rules) or "no_auth" in spec.flags:
        return True  # AUTH, HELLO, RESET: whoever may switch users (Redis's CMD_NO_AUTH)
    full = full_name(name, args) if name in CONTAINERS else name  # a plain command: its name is the key, undecoded
    verdict = user.decisions.get(full)
    if verdict is None:
        command = name.decode(errors="replace")
        whole = full if isinstance(full, str) else command
        own = subcommand_categories(whole) if isinstance(full, str) else categories_of(name, spec)
        if own is None:
            return True  # no such subcommand: the command answers so itself, as Redis refuses it before any ACL check
        categories = {f"@{category}" for category in own} | {"@all"}
        verdict = user.all_commands
        for rule, allowed in user.command_rules.items():
            if rule == command or rule == whole or rule in categories:
                verdict = allowed
        if len(user.decisions) >= MAX_DECISIONS:
            user.decisions.clear()
        user.decisions[full] = verdict
    return verdict


@functools.lru_cache(maxsize=4096)
def matcher(pattern: bytes) -> Callable[[bytes], bool]:
    """A user's key or channel pattern, compiled once (common/glob.py: the
    match costs at most pattern x key length), not per command. Patterns
    come from the administrator's rules, so the cache holds few."""
    return compile_glob(pattern, 2**32)


def may_use_key(user: User, key: bytes, needed: str) -> bool:
    """Whether one of the user's patterns gives every permission `needed`
    ("R", "W", both or none) and matches `key` (Redis's ACLSelectorCheckKey)."""
    if user.all_keys:
        return True
    return any(all(p in permission for p in needed) and matches(key) for matches, permission in key_matchers(user))


def key_matchers(user: User) -> list[tuple[Callable[[bytes], bool], str]]:
    """The user's key patterns, compiled, with their permissions (made once per User)."""
    if user.compiled_keys is None:
        user.compiled_keys = [(matcher(pattern), permission) for pattern, permission in user.key_patterns]
    return user.compiled_keys


def may_use_channel(user: User, channel: bytes, is_pattern: bool) -> bool:
    """A channel must match an allowed pattern; a PSUBSCRIBE pattern must be
    one of them, literally (Redis 7.0's rule: a pattern could match more)."""
    if user.all_channels:
        return True
    if is_pattern:
        return channel in user.channel_patterns
    return any(matcher(pattern)(channel) for pattern in user.channel_patterns)


PATTERN_COMMANDS = {b"psubscribe", b"punsubscribe"}
CHANNEL_COMMANDS = {b"subscribe": 0, b"unsubscribe": 0, b"ssubscribe": 0, b"sunsubscribe": 0, b"psubscribe": 0,
                    b"punsubscribe": 0, b"publish": 1, b"spublish": 1}  # name -> 0: every argument, 1: the first  # fmt: skip


def denial(user: User, name: bytes, spec: CommandSpec, args: list[bytes]) -> tuple[str, bytes] | None:
    """Why `user` may not run the command (ACL_DENIED_CMD, _KEY, _CHANNEL)
    and the object refused, or None if it may (Redis's ACLCheckAllPerm)."""
    if user.unrestricted():
        return None
    if not may_run(user, name, spec, args):
        return "command", full_name(name, args).encode()
    if not user.all_keys:
        for key, flags in key_specs.keys_with_flags(name, spec, args):
            if not may_use_key(user, key, key_specs.permissions_needed(flags)):
                return "key", key
    channels = CHANNEL_COMMANDS.get(name)
    if channels is not None and (name not in (b"unsubscribe", b"punsubscribe", b"sunsubscribe")):
        for channel in (args[:1] if channels else args):
            if not may_use_channel(user, channel, name in PATTERN_COMMANDS):
                return "channel", channel
    return None


NOPERM = {
    "command": "NOPERM this user has no permissions to run the '{}' command",
    "key": "NOPERM this user has no permissions to access one of the keys used as arguments",
    "channel": "NOPERM this user has no permissions to access one of the channels used as arguments",
}


# --- ACL LOG -----------------------------------------------------------------------------------


@dataclass(eq=False)
class LogEntry:
    reason: str  # command, key, channel, auth
    context: str  # toplevel, multi
    object: bytes
    username: bytes
    created: float
    client_info: str
    count: int = 1


log: deque[LogEntry] = deque()  # newest first


def add_log_entry(reason: str, context: str, object_: bytes, username: bytes, client_info: str) -> None:
    """Log a refusal; one like a recent one (among the last 10, within 60 s)
    only counts again, as Redis merges them."""
    now = time.time()
    for index, entry in enumerate(list(log)[:10]):
        if (entry.reason, entry.context, entry.object, entry.username) == (reason, context, object_, username) \
                and now - entry.created < 60:  # fmt: skip
            del log[index]
            entry.count += 1
            entry.created, entry.client_info = now, client_info
            log.appendleft(entry)
            return
    log.appendleft(LogEntry(reason, context, object_, username, now, client_info))
    while len(log) > LOG_MAX:
        log.pop()


# --- describing a user -----------------------------------------------------------------------


def describe_commands(user: User) -> str:
    """The command rules: +@all or -@all, the categories, then the single
    commands (as Redis 7.0 lists them). A category rule dropped the command
    rules before it that it overrides, so this order means the same."""
    rules = ["+@all" if user.all_commands else "-@all"]
    ordered = sorted(user.command_rules.items(), key=lambda rule: not rule[0].startswith("@"))  # stable
    rules += [("+" if allowed else "-") + rule for rule, allowed in ordered]
    return " ".join(rules)


def describe_keys(user: User) -> str:
    if user.all_keys:
        return "~*"
    return " ".join(("~" if permission == "RW" else f"%{permission}~") + pattern.decode(errors="replace")
                    for pattern, permission in user.key_patterns)  # fmt: skip


def describe_channels(user: User) -> str:
    if user.all_channels:
        return "&*"
    return " ".join(["resetchannels", *("&" + pattern.decode(errors="replace") for pattern in user.channel_patterns)])


def flags_of(user: User) -> list[str]:
    return ["on" if user.enabled else "off", *(["nopass"] if user.nopass else []), *([user.payload] if user.payload else [])]


def describe(user: User) -> str:
    """The user as ACL LIST shows it, and as an ACL file holds it."""
    parts = ["user", user.name.decode(errors="replace"), *flags_of(user), *("#" + hexed for hexed in user.digests)]
    parts += [part for part in (describe_keys(user), describe_channels(user), describe_commands(user)) if part]
    return " ".join(parts)


def generate_password(bits: int) -> str:
    """ACL GENPASS: `bits` random bits, in hex (rounded up to whole characters), from the OS's generator."""
    return secrets.token_hex((bits + 7) // 8)[: (bits + 3) // 4]



# --- the ACL command ----------------------------------------------------------------------------
# It needs to know who asks and to close the connections of a deleted
# user: the chapter's server registers those two (as it registers into
# chapter 14's seams), so that this module does not import it.

current_username: Callable[[], bytes] = lambda: b"default"
disconnect_user: Callable[[bytes], None] = lambda name: None

ACL_ARITY = {b"setuser": -3, b"getuser": 3, b"deluser": -3, b"users": 2, b"list": 2, b"whoami": 2, b"cat": -2,
             b"genpass": -2, b"log": -2, b"dryrun": -4, b"load": 2, b"save": 2, b"help": 2}  # fmt: skip
ACL_HELP = [
    "CAT [<category>]", "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]", "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>", "    Get the user's details.",
    "GENPASS [<bits>]", "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST", "    Show users details in config file format.",
    "LOAD", "    Reload users from the ACL file.",
    "LOG [<count> | RESET]", "    Show the ACL log entries.",
    "SAVE", "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]", "    Create or modify a user with the specified attributes.",
    "USERS", "    List all the registered usernames.",
    "WHOAMI", "    Return the current connection username.",
    "HELP", "    Prints this help.",
]  # fmt: skip
NO_ACL_FILE = ("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the "
               "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file "
               "set) in order to store users in the Redis configuration.")  # fmt: skip
GENPASS_MAX_BITS = 4096


def acl_command(args: list[bytes], out: Any, commands: dict[bytes, CommandSpec]) -> None:
    """ACL SETUSER | GETUSER | DELUSER | USERS | LIST | WHOAMI | CAT | GENPASS | LOG | DRYRUN | HELP"""
    subcommand = args[0].lower()
    arity = ACL_ARITY.get(subcommand)
    count = len(args) + 1
    if arity is None:
        out.error(f"ERR unknown subcommand '{args[0].decode(errors='replace')}'. Try ACL HELP.")
    elif count != arity if arity > 0 else count < -arity:
        out.error(f"ERR wrong number of arguments for 'acl|{subcommand.decode()}' command")
    elif subcommand == b"setuser":
        name = args[1]
        if any(byte in b" \x00" for byte in name):
            out.error("ERR Usernames can't contain spaces or null characters")
            return
        try:
            users[name] = apply_rules(users.get(name) or User(name), args[2:], commands)
        except RuleError as error:
            out.error(f"ERR {error}")
            return
        out.simple("OK")
    elif subcommand == b"getuser":
        write_user(out, users.get(args[1]))
    elif subcommand == b"deluser":
        if b"default" in args[1:]:
            out.error("ERR The 'default' user cannot be removed")
            return
        deleted = 0
        for name in dict.fromkeys(args[1:]):
            if users.pop(name, None) is not None:
                deleted += 1
                disconnect_user(name)  # its clients go: they would act as nobody
        out.integer(deleted)
    elif subcommand in (b"users", b"list"):
        names = sorted(users)  # Redis keeps them in a radix tree: in byte order
        out.bulk_array(names if subcommand == b"users" else [describe(users[name]).encode() for name in names])
    elif subcommand == b"whoami":
        out.bulk(current_username())
    elif subcommand == b"cat":
        category_command(args, out, commands)
    elif subcommand == b"genpass":
        bits = parse_integer(args[1]) if len(args) > 1 else 256
        if bits is None:
            out.error("ERR value is not an integer or out of range")
            return
        if not 0 < bits <= GENPASS_MAX_BITS:
            out.error(f"ERR ACL GENPASS argument must be the number of bits for the output password, a positive "
                      f"number up to {GENPASS_MAX_BITS}")  # fmt: skip
            return
        out.bulk(generate_password(bits).encode())
    elif subcommand == b"log":
        log_command(args, out)
    elif subcommand == b"dryrun":
        dryrun(args, out, commands)
    elif subcommand in (b"load", b"save"):
        load_or_save(subcommand, out, commands)
    else:
        out.array(len(ACL_HELP) + 1)
        out.simple("ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        for line in ACL_HELP:
            out.simple(line)


def write_user(out: Any, user: User | None) -> None:
    """ACL GETUSER's map (Redis 7.0: flags, passwords, commands, keys, channels, selectors)."""
    if user is None:
        out.null()
        return
    out.map(6)
    out.bulk(b"flags")
    out.bulk_array([flag.encode() for flag in flags_of(user)])
    out.bulk(b"passwords")
    out.bulk_array([hexed.encode() for hexed in user.digests])
    out.bulk(b"commands")
    out.bulk(describe_commands(user).encode())
    out.bulk(b"keys")
    out.bulk(describe_keys(user).encode())
    out.bulk(b"channels")
    out.bulk(("&*" if user.all_channels else " ".join("&" + p.decode(errors="replace") for p in user.channel_patterns)).encode())
    out.bulk(b"selectors")
    out.array(0)


def category_command(args: list[bytes], out: Any, commands: dict[bytes, CommandSpec]) -> None:
    if len(args) == 1:
        out.bulk_array([category.encode() for category in CATEGORIES])
        return
    if len(args) > 2:
        out.error(f"ERR unknown subcommand or wrong number of arguments for '{args[0].decode(errors='replace')}'. "
                  "Try ACL HELP.")  # fmt: skip
        return
    category = args[1].lower().decode(errors="replace")
    if category not in CATEGORIES:
        out.error(f"ERR Unknown category '{args[1].decode(errors='replace')[:128]}'")
        return
    out.bulk_array(commands_in(category, commands))


def commands_in(category: str, commands: dict[bytes, CommandSpec]) -> list[bytes]:
    """The commands of a category, a container's subcommands by their full names (client|kill), as Redis lists them."""
    found = [name for name, spec in commands.items() if name not in CONTAINERS and category in categories_of(name, spec)]
    found += [full.encode() for full, categories in SUBCOMMAND_CATEGORIES.items()
              if category in categories and full.partition("|")[0].encode() in commands]  # fmt: skip
    if b"command" in commands and category in categories_of(b"command", commands[b"command"]):
        found.append(b"command")  # COMMAND alone is a command too
    return found


def log_command(args: list[bytes], out: Any) -> None:
    """ACL LOG [count | RESET]: the newest refusals first."""
    count = 10
    if len(args) == 2:
        if args[1].lower() == b"reset":
            log.clear()
            out.simple("OK")
            return
        count = parse_integer(args[1])
        if count is None:
            out.error("ERR value is not an integer or out of range")
            return
        count = max(count, 0)
    elif len(args) > 2:
        out.error(f"ERR unknown subcommand or wrong number of arguments for '{args[0].decode(errors='replace')}'. "
                  "Try ACL HELP.")  # fmt: skip
        return
    entries = list(log)[:count]
    out.array(len(entries))
    now = time.time()
    for entry in entries:
        out.map(7)
        for name, value in (("count", entry.count), ("reason", entry.reason), ("context", entry.context),
                            ("object", entry.object), ("username", entry.username),
                            ("age-seconds", None), ("client-info", entry.client_info)):  # fmt: skip
            out.bulk(name.encode())
            if name == "age-seconds":
                out.double(round(now - entry.created, 3))
            elif isinstance(value, int):
                out.integer(value)
            else:
                out.bulk(value if isinstance(value, bytes) else value.encode())


def dryrun(args: list[bytes], out: Any, commands: dict[bytes, CommandSpec]) -> None:
    """ACL DRYRUN user command [arg ...]: OK, or why it would be refused."""
    user = users.get(args[1])
    if user is None:
        out.error(f"ERR User '{args[1].decode(errors='replace')}' not found")
        return
    name = args[2].lower()
    spec = commands.get(name)
    if spec is None:
        out.error(f"ERR Command '{args[2].decode(errors='replace')}' not found")
        return
    count = len(args) - 2
    if count != spec.arity if spec.arity > 0 else count < -spec.arity:
        out.error(f"ERR wrong number of arguments for '{name.decode()}' command")
        return
    found = denial(user, name, spec, args[3:])
    if found is None:
        out.simple("OK")
        return
    reason, refused = found
    text = refused.decode(errors="replace")
    out.bulk({"command": f"This user has no permissions to run the '{text}' command",
              "key": f"This user has no permissions to access the '{text}' key",
              "channel": f"This user has no permissions to access the '{text}' channel"}[reason].encode())  # fmt: skip


# --- the ACL file -------------------------------------------------------------------------------
# With --aclfile, the users live in a file of ACL LIST lines ("user alice
# on #... ~app:* +@all"): read at start-up and by ACL LOAD, written by ACL
# SAVE. A load is all or nothing: any error leaves the users as they were.

acl_file: str = ""  # the path; empty: no file (ACL LOAD and SAVE refuse, as Redis's)
drop_stale_clients: Callable[[], None] = lambda: None  # after a load: close the clients of users now gone


def load_file(path: str, commands: dict[bytes, CommandSpec]) -> str | None:
    """Replace every user with the file's; Redis's error text if the file
    cannot be read or a line is wrong (then nothing changes)."""
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as error:
        return f"Error loading ACLs, opening file '{path}': {error.strerror}"
    loaded: dict[bytes, User] = {}
    errors = []
    for number, line in enumerate(text.split(b"\n"), 1):
        words = [word for word in line.strip(b" \t\r\n").split(b" ") if word]
        if not words:
            continue
        if words[0] != b"user" or len(words) < 2:
            errors.append(f"{path}:{number} should start with user keyword followed by the username. ")
            continue
        name = words[1]
        if name in loaded:
            errors.append(f"WARNING: Duplicate user '{name.decode(errors='replace')}' found on line {number}. ")
            continue
        user = User(name)
        syntax_reported = False
        for rule in words[2:]:
            try:
                apply_rule(user, rule.strip(b"\t\r\n"), commands)
            except RuleError as error:
                if str(error) == UNKNOWN:
                    errors.append(f"{path}:{number}: Error in applying operation '{rule.decode(errors='replace')}': "
                                  f"{error}. ")  # fmt: skip
                elif not syntax_reported:
                    errors.append(f"{path}:{number}: {error}. ")
                    syntax_reported = True
        loaded[name] = user
    if errors:
        return "".join(errors) + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
    loaded.setdefault(b"default", new_default_user())
    users.clear()
    users.update(loaded)
    drop_stale_clients()
    return None


def save_file(path: str) -> str | None:
    """Write every user as ACL LIST shows it: to a temporary file, synced,
    then renamed over the old one, so that a crash leaves one or the other."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as file:
            file.write(b"".join(describe(users[name]).encode() + b"\n" for name in sorted(users)))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return error.strerror or str(error)
    return None


def load_or_save(subcommand: bytes, out: Any, commands: dict[bytes, CommandSpec]) -> None:
    """ACL LOAD | SAVE."""
    if not acl_file:
        out.error(NO_ACL_FILE)
    elif subcommand == b"load":
        problem = load_file(acl_file, commands)
        out.error(f"ERR {problem}") if problem else out.simple("OK")
    elif save_file(acl_file) is None:
        out.simple("OK")
    else:
        out.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
