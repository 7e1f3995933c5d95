"""Chapter 07: a key-value server: GET, SET and DEL.

Chapter 06's event loop, unchanged, now executes real commands against a
keyspace: a Python dict from key to value (both bytes), as the book's
std::map. Chapter 08 replaces the dict with a hashtable of our own.

Also here is what real clients send when they start, so they work cleanly:
COMMAND (redis-cli asks for the command table to offer hints) and CLIENT
SETINFO (redis-py announces its name and version).

    redis-cli SET greeting hello
    redis-cli GET greeting
    redis-cli DEL greeting
"""

from __future__ import annotations

import select
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.net import create_listener, log, parse_options, serve  # noqa: E402
from common.resp import (  # noqa: E402
    ProtocolError,
    RequestParser,
    write_array_header,
    write_bulk,
    write_error,
    write_integer,
    write_null,
    write_simple,
)

RECV_SIZE = 64 * 1024
# Past this much unsent output, a client's further requests wait unexecuted
# until the kernel has taken some of it. A single reply may exceed it.
MAX_OUTPUT = 1024 * 1024

# --- the keyspace ----------------------------------------------------------------
# Chapter 07 keeps keys in a Python dict, as the book starts with std::map;
# chapter 08 swaps in a hashtable of our own.

keyspace: dict[bytes, bytes] = {}

# --- commands ------------------------------------------------------------------
# A command takes its arguments (the name excluded) and appends its reply to
# `out`, the connection's output buffer.

Command = Callable[[list[bytes], bytearray], None]


def ping(args: list[bytes], out: bytearray) -> None:
    if len(args) > 1:  # Redis checks PING's upper bound itself, as here
        write_error(out, wrong_arity_message(b"ping"))
    elif args:
        write_bulk(out, args[0])
    else:
        write_simple(out, "PONG")


def echo(args: list[bytes], out: bytearray) -> None:
    write_bulk(out, args[0])


def get(args: list[bytes], out: bytearray) -> None:
    value = keyspace.get(args[0])
    if value is None:
        write_null(out)
    else:
        write_bulk(out, value)


def set_(args: list[bytes], out: bytearray) -> None:
    if len(args) != 2:  # SET's options (EX, PX, NX, ...) arrive in chapter 13
        write_error(out, "ERR syntax error")
        return
    keyspace[args[0]] = args[1]
    write_simple(out, "OK")


def del_(args: list[bytes], out: bytearray) -> None:
    removed = 0
    for key in args:
        if keyspace.pop(key, None) is not None:
            removed += 1
    write_integer(out, removed)


def command(args: list[bytes], out: bytearray) -> None:
    """COMMAND [COUNT | INFO name... | HELP]: describe the commands we have.

    redis-cli asks for this at start-up to learn which commands exist. It
    first tries COMMAND DOCS, which we do not have; on that error it falls
    back to its built-in help, which is what we want.
    """
    if not args:
        write_command_infos(out, list(COMMANDS))
        return
    subcommand = args[0].lower()
    if subcommand == b"count" and len(args) == 1:
        write_integer(out, len(COMMANDS))
    elif subcommand == b"info":
        write_command_infos(out, [name.lower() for name in args[1:]] or list(COMMANDS))
    elif subcommand == b"help" and len(args) == 1:
        write_help(out, "COMMAND", COMMAND_HELP)
    elif subcommand in (b"count", b"help"):
        write_error(out, wrong_arity_message(b"command|" + subcommand))
    else:
        write_error(out, unknown_subcommand_message(args[0], "COMMAND"))


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


def write_command_infos(out: bytearray, names: list[bytes]) -> None:
    """Redis 7's ten-field description of each command, nil for unknown names."""
    write_array_header(out, len(names))
    for name in names:
        spec = COMMANDS.get(name)
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


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What the dispatcher and COMMAND need to know of a command.

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


COMMANDS: dict[bytes, CommandSpec] = {
    b"ping": CommandSpec(ping, -1, ("fast",)),
    b"echo": CommandSpec(echo, 2, ("fast",)),
    b"get": CommandSpec(get, 2, ("readonly", "fast"), 1, 1, 1),
    b"set": CommandSpec(set_, -3, ("write", "denyoom"), 1, 1, 1),
    b"del": CommandSpec(del_, -2, ("write",), 1, -1, 1),
    b"command": CommandSpec(command, -1, ("loading", "stale")),
    b"client": CommandSpec(client, -2, ("noscript", "loading", "stale")),
}


def execute(request: list[bytes], out: bytearray) -> None:
    """Run one request and append its reply, or Redis's error for it."""
    name = request[0].lower()
    spec = COMMANDS.get(name)
    if spec is None:
        write_error(out, unknown_command_message(request))
        return
    count = len(request)
    if (spec.arity > 0 and count != spec.arity) or (spec.arity < 0 and count < -spec.arity):
        write_error(out, wrong_arity_message(name))
        return
    spec.function(request[1:], out)


def wrong_arity_message(name: bytes) -> str:
    return f"ERR wrong number of arguments for '{name.decode()}' command"


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


# --- connections -------------------------------------------------------------


class Connection:
    """One client's socket and the state kept for it between events."""

    __slots__ = ("sock", "parser", "outgoing", "closing", "polled_events")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = RequestParser()
        self.outgoing = bytearray()  # replies not yet sent
        self.closing = False  # close once the outgoing replies are sent
        self.polled_events = select.POLLIN  # what the poller waits for now

    def wanted_events(self) -> int:
        """What to poll for: input unless closing, output while replies wait."""
        events = 0 if self.closing else select.POLLIN
        if self.outgoing:
            events |= select.POLLOUT
        return events


def handle_readable(conn: Connection) -> None:
    try:
        data = conn.sock.recv(RECV_SIZE)
    except BlockingIOError:
        return  # spurious wakeup: nothing to read after all
    except OSError:  # e.g. reset by the client: nobody left to answer
        conn.closing = True
        conn.outgoing.clear()
        return
    if not data:
        # The client will send no more. Requests already received were
        # answered; the replies still go out before we close.
        conn.closing = True
        return
    conn.parser.feed(data)
    execute_requests(conn)
    # Most replies fit in the socket buffer: send now instead of waiting a
    # round of poll() to learn that the socket is writable.
    handle_writable(conn)


def execute_requests(conn: Connection) -> None:
    """Answer every complete request buffered, while the output is not too big."""
    out = conn.outgoing
    try:
        while len(out) < MAX_OUTPUT and (request := conn.parser.next_request()) is not None:
            execute(request, out)
    except ProtocolError as error:
        write_error(out, f"ERR {error}")
        conn.closing = True
    except Exception:
        # A bug in a command must cost this one connection, not the server.
        log.exception("internal error while executing a request; closing the connection")
        write_error(out, "ERR internal error")
        conn.closing = True


def handle_writable(conn: Connection) -> None:
    try:
        sent = conn.sock.send(conn.outgoing)
    except BlockingIOError:
        return  # the kernel's buffer is full: poll() will tell us when not
    except OSError:
        conn.closing = True
        conn.outgoing.clear()
        return
    # Deleting from the front of a bytearray moves its start pointer in
    # CPython; the unsent rest is not copied.
    del conn.outgoing[:sent]
    if not conn.outgoing and not conn.closing and conn.parser.buffered():
        # Requests held back by MAX_OUTPUT can run now.
        execute_requests(conn)


# --- the event loop --------------------------------------------------------------


def accept_clients(listener: socket.socket, poller: select.poll, clients: dict[int, Connection]) -> None:
    """Accept every connection waiting in the listen queue."""
    while True:
        try:
            sock, address = listener.accept()
        except BlockingIOError:
            return
        except OSError as error:  # e.g. out of file descriptors: keep serving the rest
            log.warning("accept failed: %s", error)
            return
        sock.setblocking(False)
        # Replies are written whole; don't let Nagle's algorithm hold them back.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock)
        clients[sock.fileno()] = conn
        poller.register(sock, conn.polled_events)
        log.debug("connection from %s:%d", *address[:2])


def close_client(conn: Connection, poller: select.poll, clients: dict[int, Connection]) -> None:
    fd = conn.sock.fileno()
    poller.unregister(fd)
    del clients[fd]
    conn.sock.close()


def run_event_loop(listener: socket.socket) -> None:
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    listener_fd = listener.fileno()
    clients: dict[int, Connection] = {}
    while True:
        for fd, events in poller.poll():
            if fd == listener_fd:
                accept_clients(listener, poller, clients)
                continue
            conn = clients[fd]
            # POLLHUP/POLLERR come without POLLIN on some systems; recv()
            # then reports what happened.
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                handle_readable(conn)
            if events & select.POLLOUT and conn.outgoing:
                handle_writable(conn)
            if conn.closing and not conn.outgoing:
                close_client(conn, poller, clients)
                continue
            wanted = conn.wanted_events()
            if wanted != conn.polled_events:
                # Only on change: every modify() makes the next poll()
                # rebuild its array of all descriptors.
                poller.modify(fd, wanted)
                conn.polled_events = wanted


def main() -> None:
    options = parse_options("Chapter 07: a key-value server")
    with create_listener(options.host, options.port) as listener:
        log.info("listening on %s:%d", options.host, options.port)
        serve(lambda: run_event_loop(listener))


if __name__ == "__main__":
    main()
