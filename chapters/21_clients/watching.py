"""MONITOR and SLOWLOG: watching what the server runs.

Part of chapter 21. A monitor is sent every command any client runs, as it
runs; the slow log keeps the commands that took longer than
`slowlog-log-slower-than` microseconds, the last `slowlog-max-len` of
them. Both are listeners after every call (chapter 14's after_call), as
Redis's call() feeds them; neither ever shows a password.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.chapters import load_chapter
from common.commands import CommandSpec, unknown_subcommand_message, write_help, wrong_arity_message
from common.resp import parse_integer
from common.resp3 import ReplyBuffer

chapter20 = load_chapter(20)
chapter19 = chapter20.chapter19  # output limits (a monitor that does not read)
chapter14 = chapter20.chapter14  # the client running, the replies to send
COMMANDS = chapter14.COMMANDS

# The client a connection is (server.py's Client: its address and name), or None.
client_of: Callable[[Any], Any] = lambda conn: None  # noqa: E731


# --- MONITOR --------------------------------------------------------------------------------

monitors: dict[Any, None] = {}  # the clients in MONITOR mode, in the order they asked
REDACTED = {b"auth": 1, b"hello": None}  # command -> from which argument its secrets start (HELLO: after AUTH)


def monitor(args: list[bytes], out: ReplyBuffer) -> None:
    """MONITOR: from now on, every command any client runs is sent here."""
    conn = chapter14.current_client
    if conn.deny_blocking:
        out.error("ERR MONITOR isn't allowed for DENY BLOCKING client")
        return
    if conn not in monitors:
        monitors[conn] = None
        out.simple("OK")


def feed_monitors(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After every call (chapter 14's after_call), as Redis's call(): the
    command, with the time, database and client address, to every
    monitor; not an administrative one (CONFIG, MONITOR: Redis hides them),
    and never a password."""
    if not monitors or "admin" in spec.flags or "skip_monitor" in spec.flags:
        return
    client = client_of(chapter14.current_client)
    now = time.time()
    shown = redacted(name, args)
    if not COMMANDS.nesting:  # the client's own request: its name as written (inside EXEC, as queued)
        name = COMMANDS.request_name
    line = b"+%d.%06d [0 %s] %s\r\n" % (int(now), int(now * 1_000_000) % 1_000_000,
                                         (client.address if client else "?").encode(),
                                         b" ".join(quoted(arg) for arg in [name, *shown]))  # fmt: skip
    for conn in list(monitors):
        if conn.closing:
            continue
        conn.outgoing += line
        chapter14.clients_pending_write[id(conn)] = conn
        # A monitor that does not read would grow without end: it counts as
        # a replica for client-output-buffer-limit (256mb, or 64mb for 60 s),
        # where Redis counts it as a normal client, whose buffer has no limit.
        chapter19.output_limits.enforce(conn, "slave")


def redacted(name: bytes, args: list[bytes]) -> list[bytes]:
    """Arguments as a monitor or the slow log shows them: AUTH's, and
    HELLO's after AUTH, as "(redacted)" (Redis's redactClientCommandArgument)."""
    if name == b"auth":
        return [b"(redacted)"] * len(args)
    if name == b"hello":
        shown = list(args)
        for position, arg in enumerate(args):
            if arg.lower() == b"auth" and position + 2 < len(args):
                shown[position + 1] = shown[position + 2] = b"(redacted)"
        return shown
    return args


def quoted(arg: bytes) -> bytes:
    """An argument as Redis's sdscatrepr prints it: in double quotes, with
    \\n, \\r, \\t, \\a, \\b, \\\\ and \\" escaped and other bytes outside
    printable ASCII as \\xhh."""
    escapes = {ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r", ord("\t"): b"\\t",
               7: b"\\a", 8: b"\\b"}  # fmt: skip
    text = bytearray(b'"')
    for byte in arg:
        if byte in escapes:
            text += escapes[byte]
        elif 32 <= byte < 127:
            text.append(byte)
        else:
            text += b"\\x%02x" % byte
    return bytes(text + b'"')


# --- SLOWLOG ---------------------------------------------------------------------------------

MAX_LOGGED_ARGUMENTS = 32  # an entry's arguments at most (the last then says how many more)
MAX_LOGGED_BYTES = 128  # of one argument


@dataclass(slots=True)
class SlowLog:
    entries: deque  # newest first: (id, unix time, microseconds, arguments, address, name)
    next_id: int = 0
    slower_than: int = 10_000  # slowlog-log-slower-than, in microseconds; negative: off
    max_len: int = 128  # slowlog-max-len


slowlog = SlowLog(deque())


def log_if_slow(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After every call (chapter 14's after_call): a command that took
    `slower_than` microseconds or more is logged, with its arguments cut
    short as Redis does; EXEC is not (each command in it is), nor a
    command that left its client blocked (nothing ran yet)."""
    microseconds = COMMANDS.last_call_ns // 1000
    if slowlog.slower_than < 0 or microseconds < slowlog.slower_than or "skip_slowlog" in spec.flags:
        return
    conn = chapter14.current_client
    if conn is not None and conn.blocked:
        return
    client = client_of(conn)
    shown = [COMMANDS.request_name if not COMMANDS.nesting else name, *redacted(name, args)]
    if len(shown) > MAX_LOGGED_ARGUMENTS:
        shown = shown[: MAX_LOGGED_ARGUMENTS - 1] + [b"... (%d more arguments)" % (len(shown) - MAX_LOGGED_ARGUMENTS + 1)]
    shown = [arg if len(arg) <= MAX_LOGGED_BYTES else arg[:MAX_LOGGED_BYTES] + b"... (%d more bytes)" %
             (len(arg) - MAX_LOGGED_BYTES) for arg in shown]  # fmt: skip
    slowlog.entries.appendleft((slowlog.next_id, int(time.time()), microseconds, shown,
                                client.address.encode() if client else b"", client.name if client else b""))  # fmt: skip
    slowlog.next_id += 1
    while len(slowlog.entries) > slowlog.max_len:
        slowlog.entries.pop()


def slowlog_command(args: list[bytes], out: ReplyBuffer) -> None:
    """SLOWLOG GET [count] | LEN | RESET | HELP"""
    subcommand = args[0].lower()
    arity = {b"get": -2, b"len": 2, b"reset": 2, b"help": 2}.get(subcommand)
    if arity is None:
        out.error(unknown_subcommand_message(args[0], "SLOWLOG"))
    elif len(args) + 1 != arity if arity > 0 else len(args) + 1 < -arity:
        out.error(wrong_arity_message(b"slowlog|" + subcommand))
    elif subcommand == b"help":
        write_help(out, "SLOWLOG", SLOWLOG_HELP)
    elif subcommand == b"len":
        out.integer(len(slowlog.entries))
    elif subcommand == b"reset":
        slowlog.entries.clear()
        out.simple("OK")
    elif len(args) > 2:
        out.error("ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.")
    else:
        count = parse_integer(args[1]) if len(args) == 2 else 10
        if count is None or count < -1:
            out.error("ERR count should be greater than or equal to -1")
            return
        entries = list(slowlog.entries)[: None if count == -1 else count]
        out.array(len(entries))
        for entry_id, when, microseconds, shown, address, name in entries:
            out.array(6)
            out.integer(entry_id)
            out.integer(when)
            out.integer(microseconds)
            out.bulk_array(shown)
            out.bulk(address)
            out.bulk(name)


SLOWLOG_HELP = [
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


def set_slower_than(value: int) -> None:
    slowlog.slower_than = value


def set_max_len(value: int) -> None:
    slowlog.max_len = value
    while len(slowlog.entries) > value:
        slowlog.entries.pop()
