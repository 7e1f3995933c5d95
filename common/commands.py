"""The command table: dispatch with Redis's arity checks and error texts,
per-command statistics, and the introspection that clients send on
connect (COMMAND, CLIENT SETINFO).

Redis-compatibility glue used from chapter 07 (Key-Value Server) on. No
chapter of the book teaches it, but real clients need it: redis-cli asks
COMMAND at start-up, redis-py sends CLIENT SETINFO, and a user expects
Redis's exact error for a misspelt command. Each chapter declares its own
commands as `CommandSpec`s; this module does the rest.

A command is a function taking its arguments (the name excluded) and the
connection's output buffer, to which it appends its reply: a bytearray
written with common.resp's write_* functions, or from chapter 09 on a
ReplyBuffer (a bytearray too). Everything here writes through write_*, so
it serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns  # a global name: one lookup less per command than time.perf_counter_ns
from typing import Any

from common.resp import (
    parse_integer,
    write_array_header,
    write_bulk,
    write_error,
    write_integer,
    write_null,
    write_simple,
)

# What HELLO and INFO report: the Redis version whose replies the servers reproduce.
REDIS_VERSION = "7.0.0"

Command = Callable[[list[bytes], Any], None]
ERROR_MARK = ord("-")  # the first byte of an error reply
# Redis's texts for the errors many commands share.
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_AN_INTEGER = "ERR value is not an integer or out of range"
NOT_A_FLOAT = "ERR value is not a valid float"


def lookup_typed(db: Any, key: bytes, value_type: type, out: Any) -> Any:
    """The value of `value_type` at `key` in a chapter's keyspace `db`
    (its lookup_live); None if there is no key; False, after replying
    WRONGTYPE, if the key holds another type (Redis's checkType)."""
    entry = db.lookup_live(key)
    if entry is None:
        return None
    if not isinstance(entry.value, value_type):
        write_error(out, WRONGTYPE)
        return False
    return entry.value


def parse_count(text: bytes, out: Any) -> int | None:
    """A count that must be 0 or more (LPOP's, SPOP's, ZPOPMIN's), or None
    after replying Redis's error (its getPositiveLongFromObjectOrReply: one text for both faults)."""
    count = parse_integer(text)
    if count is None or count < 0:
        write_error(out, "ERR value is out of range, must be positive")
        return None
    return count


def parse_timeout_ms(text: bytes, out: Any) -> int | None:
    """A timeout in milliseconds (CLIENT PAUSE's, WAIT's), or None after
    replying Redis's error (its getTimeoutFromObjectOrReply, in milliseconds)."""
    milliseconds = parse_integer(text)
    if milliseconds is None:
        write_error(out, "ERR timeout is not an integer or out of range")
        return None
    if milliseconds < 0:
        write_error(out, "ERR timeout is negative")
        return None
    return milliseconds


def lookup_or_reply(db: Any, key: bytes, value_type: type, out: Any, missing: Callable[[], None]) -> Any:
    """The value of `value_type` at `key`; or None after replying for it:
    `missing()` if there is no key, WRONGTYPE if it holds another type
    (Redis's lookupKeyReadOrReply, then checkType)."""
    found = lookup_typed(db, key, value_type, out)
    if found is None:
        missing()
    return found or None


def delete_if_empty(db: Any, key: bytes, value: Any) -> bool:
    """An empty collection is no key at all, as in Redis: delete it, with
    its "del" event. True if it was deleted."""
    if value:
        return False
    db.delete_entry(db.keyspace.lookup(key))
    db.notify_keyspace_event("g", "del", key)
    return True


@dataclass(slots=True)
class CommandSpec:
    """What the dispatcher and COMMAND need to know of a command, and its
    statistics (INFO commandstats).

    Arity counts the name too, as in Redis: a positive arity is exact, a
    negative one is a minimum. The key positions say where keys are among
    the arguments (first, last (-1: the end), step), as COMMAND reports.
    """

    function: Command
    arity: int
    flags: tuple[str, ...]
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    # For a command whose keys move with its arguments (ZMPOP's numkeys):
    # arguments -> its keys (Redis's getkeys_proc).
    find_keys: Callable[[list[bytes]], list[bytes]] | None = None
    calls: int = 0  # executed
    nanoseconds: int = 0  # spent executing
    rejected_calls: int = 0  # refused before executing (wrong number of arguments)
    failed_calls: int = 0  # executed, and replied with an error
    writes: bool = field(init=False)  # it may change the data: "write" is among its flags

    def __post_init__(self) -> None:
        self.writes = "write" in self.flags

    def reset_stats(self) -> None:
        self.calls = self.nanoseconds = self.rejected_calls = self.failed_calls = 0

    def keys(self, args: list[bytes]) -> list[bytes]:
        """The keys among `args` (the name excluded): where the key
        positions say (they count the name), or what find_keys finds."""
        if self.find_keys is not None:
            return self.find_keys(args)
        if not self.first_key:
            return []
        last = self.last_key if self.last_key > 0 else len(args) + 1 + self.last_key
        return args[self.first_key - 1 : last : self.key_step]


class CommandTable:
    """The commands of one server, by lower-case name, plus COMMAND and
    CLIENT, and QUIT, which `process_command` answers itself.

    Running a request takes Redis's two steps. `process_command` (Redis's
    processCommand()) finds the command and checks that it may run: that
    it exists, its number of arguments, and every check in `checks` (and,
    for a write, `write_checks`), each of which may answer in its place; a
    command refused here is told to `on_reject`. Once every check passed,
    those in `before_call` may still take the command over (a transaction
    queues it there, as Redis's processCommand() ends).
    `call` (Redis's call()) runs it, counts it for INFO commandstats, and
    tells what ran to every listener in `after_call`, and, for a write
    that did not fail, in `after_write` (where Redis propagates). A command
    may call others (EXEC does): once the outermost call returns, the
    `after_command` listeners run (Redis's afterCommand()), so that what
    they do sees the whole of it. A server built on another registers
    there what it adds around every command: a check that refuses writes
    while they cannot be kept (or an ACL's, a key at a time), a listener
    that logs every write, one that feeds replicas, one that wakes the
    clients waiting for a key. A read pays for none of the write lists.
    """

    def __init__(self, commands: dict[bytes, CommandSpec]) -> None:
        self.commands = dict(commands)
        self.add(b"command", CommandSpec(self.command, -1, ("loading", "stale")))
        self.add(b"client", CommandSpec(client, -2, ("noscript", "loading", "stale")))
        self.add(b"quit", CommandSpec(quit_, -1, ("allow_busy", "fast", "noscript", "loading", "stale")))
        # (name, spec, arguments, reply buffer) -> True if the check answered
        # in the command's place (an error refuses it), False to let it run.
        self.checks: list[Callable[[bytes, CommandSpec, list[bytes], Any], bool]] = []
        self.write_checks: list[Callable[[bytes, CommandSpec, list[bytes], Any], bool]] = []
        self.before_call: list[Callable[[bytes, CommandSpec, list[bytes], Any], bool]] = []
        # (name, spec, arguments, reply buffer, where the command's reply starts in it),
        # after the command ran; the reply is empty if it blocked its client.
        self.after_call: list[Callable[[bytes, CommandSpec, list[bytes], Any, int], None]] = []
        self.after_write: list[Callable[[bytes, CommandSpec, list[bytes], Any, int], None]] = []
        self.after_command: list[Callable[[], None]] = []
        self.nesting = 0  # calls under way: 1 inside a command, 2 inside one EXEC runs
        self.last_call_ns = 0  # how long the command that just ran took
        self.request_name = b""  # the name of the request being processed, as the client wrote it
        self.current: CommandSpec | None = None  # the command running, or that ran last
        # (name, reply buffer, where the error starts in it), when a command is
        # refused before it runs: unknown, a wrong number of arguments, or a check's error.
        self.on_reject: list[Callable[[bytes, Any, int], None]] = []

    def add(self, name: bytes, spec: CommandSpec) -> None:
        self.commands[name] = spec

    def add_all(self, specs: dict[bytes, CommandSpec]) -> None:
        """Add (or replace) every command of `specs`: a server built on another adds its own so."""
        self.commands.update(specs)

    def process_command(self, request: list[bytes], out: bytearray) -> bool:
        """Run one request and append its reply, or Redis's error for it.

        Returns True when the client asked to be disconnected (QUIT): the
        caller closes the connection once the reply is sent, and executes
        nothing the client sent after it.
        """
        self.request_name = request[0]  # as the client wrote it (a monitor shows it so)
        name = request[0].lower()
        spec = self.commands.get(name)
        if spec is None:
            self.reject(name, spec, out, unknown_command_message(request))
            return False
        if spec.function is quit_:  # as Redis 7.0, before any check: QUIT always succeeds
            write_simple(out, "OK")
            return True
        count, arity = len(request), spec.arity
        if count != arity and (arity > 0 or count < -arity):
            self.reject(name, spec, out, wrong_arity_message(name))
            return False
        args = request[1:]
        for check in self.checks + self.write_checks if spec.writes else self.checks:
            reply_start = len(out)
            if check(name, spec, args, out):
                if out[reply_start] == ERROR_MARK:
                    self.reject(name, spec, out, "", reply_start)
                return False
        for check in self.before_call:
            if check(name, spec, args, out):
                return False
        self.call(name, spec, args, out)
        return False

    def reject(self, name: bytes, spec: CommandSpec | None, out: bytearray, message: str,
               reply_start: int | None = None) -> None:  # fmt: skip
        """Redis's rejectCommand(): the error (unless a check wrote its own,
        from `reply_start`), counted, and told to `on_reject` (a
        transaction is aborted by it)."""
        if message:
            reply_start = len(out)
            write_error(out, message)
        if spec is not None:
            spec.rejected_calls += 1
        for listener in self.on_reject:
            listener(name, out, reply_start)

    def call(self, name: bytes, spec: CommandSpec, args: list[bytes], out: bytearray) -> None:
        """Run the command, count it, then tell the listeners."""
        reply_start = len(out)
        started = perf_counter_ns()
        self.nesting += 1
        self.current = spec
        try:
            spec.function(args, out)
        finally:
            self.nesting -= 1
        self.last_call_ns = perf_counter_ns() - started  # the after_call listeners may read it (a slow log)
        spec.nanoseconds += self.last_call_ns
        spec.calls += 1
        failed = len(out) > reply_start and out[reply_start] == ERROR_MARK
        if failed:
            spec.failed_calls += 1
        for listener in self.after_call:
            listener(name, spec, args, out, reply_start)
        if spec.writes and not failed:
            for listener in self.after_write:
                listener(name, spec, args, out, reply_start)
        if not self.nesting:
            for listener in self.after_command:
                listener()

    def reset_stats(self) -> None:
        for spec in self.commands.values():
            spec.reset_stats()

    def command(self, args: list[bytes], out: bytearray) -> None:
        """COMMAND [COUNT | INFO name... | HELP]: describe the commands we have.

        redis-cli asks for this at start-up to learn which commands exist. It
        first tries COMMAND DOCS, which we do not have; on that error it falls
        back to its built-in help, which is what we want.
        """
        if not args:
            self.write_command_infos(out, list(self.commands))
            return
        subcommand = args[0].lower()
        if subcommand == b"count" and len(args) == 1:
            write_integer(out, len(self.commands))
        elif subcommand == b"info":
            self.write_command_infos(out, [name.lower() for name in args[1:]] or list(self.commands))
        elif subcommand == b"help" and len(args) == 1:
            write_help(out, "COMMAND", COMMAND_HELP)
        elif subcommand in (b"count", b"help"):
            write_error(out, wrong_arity_message(b"command|" + subcommand))
        else:
            write_error(out, unknown_subcommand_message(args[0], "COMMAND"))

    def write_command_infos(self, out: bytearray, names: list[bytes]) -> None:
        """Redis 7's ten-field description of each command, nil for unknown names."""
        write_array_header(out, len(names))
        for name in names:
            spec = self.commands.get(name)
            if spec is None:
                write_null(out)
                continue
            write_array_header(out, 10)
            write_bulk(out, name)
            write_integer(out, spec.arity)
            write_array_header(out, len(spec.flags))
            for flag in spec.flags:
                write_simple(out, flag)
            write_integer(out, spec.first_key)
            write_integer(out, spec.last_key)
            write_integer(out, spec.key_step)
            for _ in range(4):  # ACL categories, tips, key specs, subcommands: none here
                write_array_header(out, 0)


COMMAND_HELP = [
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "HELP",
    "    Prints this help.",
]


def quit_(args: list[bytes], out: bytearray) -> None:
    """Never called: CommandTable.process_command answers QUIT itself. It is
    in the table so that COMMAND lists it, as Redis does."""
    raise AssertionError("QUIT is answered by CommandTable.process_command")


def client(args: list[bytes], out: bytearray) -> None:
    """CLIENT SETINFO LIB-NAME|LIB-VER value, which redis-py sends on connect.

    We check the attribute as Redis does and accept it; nothing in this
    server reports it back (Redis shows it in CLIENT LIST).
    """
    subcommand = args[0].lower()
    if subcommand == b"setinfo" and len(args) == 3:
        attribute = args[1].lower()
        if attribute not in (b"lib-name", b"lib-ver"):
            write_error(out, f"ERR Unrecognized option '{args[1].decode(errors='surrogateescape')}'")
        elif any(byte < ord("!") or byte > ord("~") for byte in args[2]):
            write_error(out, f"ERR {attribute.decode()} cannot contain spaces, newlines or special characters.")
        else:
            write_simple(out, "OK")
    elif subcommand == b"help" and len(args) == 1:
        write_help(out, "CLIENT", CLIENT_HELP)
    elif subcommand in (b"setinfo", b"help"):
        write_error(out, wrong_arity_message(b"client|" + subcommand))
    else:
        write_error(out, unknown_subcommand_message(args[0], "CLIENT"))


CLIENT_HELP = [
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "HELP",
    "    Prints this help.",
]


def write_help(out: bytearray, container: str, lines: list[str]) -> None:
    """The reply to CONTAINER HELP: status lines, as Redis writes them."""
    header = f"{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    write_array_header(out, len(lines) + 1)
    for line in [header, *lines]:
        write_simple(out, line)


def wrong_arity_message(name: bytes) -> str:
    return f"ERR wrong number of arguments for '{name.decode(errors='surrogateescape')}' command"


def unknown_subcommand_message(subcommand: bytes, container: str) -> str:
    return f"ERR unknown subcommand '{subcommand.decode(errors='surrogateescape')}'. Try {container} HELP."


def unknown_command_message(request: list[bytes]) -> str:
    """Redis's text: the name, then the first arguments, quoted, up to ~128 bytes."""
    listed = ""
    for arg in request[1:]:
        if len(listed) >= 128:
            break
        listed += "'%s' " % arg.decode(errors="surrogateescape")[: 128 - len(listed)]
    name = request[0].decode(errors="surrogateescape")[:128]
    return f"ERR unknown command '{name}', with args beginning with: {listed}"
