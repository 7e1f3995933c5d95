"""Chapter 09: typed replies, and RESP3 for the clients that ask for it.

The book's chapter gives replies types (nil, error, string, integer,
double, array) so that clients can tell a missing key from an empty
string. RESP2, which we have spoken since chapter 04, has most of them;
RESP3, which a client chooses with HELLO 3, has them all, plus maps, sets
and booleans. Commands now write typed replies through the connection's
ReplyBuffer (common/resp3.py), which encodes each in the client's protocol:
one command, two wire formats, as in Redis.

With HELLO, redis-py's defaults work from here on (it sends HELLO 3 when it
connects). New commands that read the keyspace as a whole: KEYS with Redis
glob patterns, EXISTS, TYPE, DBSIZE, and FLUSHDB/FLUSHALL to empty it.

    redis-cli -3 HELLO 3
    redis-cli KEYS 'user:*'
"""

from __future__ import annotations

import itertools
import select
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.hashtable import HMap, HNode  # noqa: E402
from common.net import create_listener, log, parse_options, serve  # noqa: E402
from common.glob import compile_glob  # noqa: E402
from common.resp import ProtocolError, RequestParser, parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402

RECV_SIZE = 64 * 1024
# HELLO reports this: the Redis version whose replies we reproduce.
REDIS_VERSION = b"7.0.0"
# Past this much unsent output, a client's further requests wait unexecuted
# until the kernel has taken some of it. A single reply may exceed it.
MAX_OUTPUT = 1024 * 1024

# --- the keyspace ----------------------------------------------------------------


class Entry(HNode):
    """A key and its value: the hashtable node itself (it inherits the
    hashtable's `key`, `hcode` and `hnext`), so a key costs one object."""

    __slots__ = ("value",)

    def __init__(self, key: bytes, value: bytes) -> None:
        super().__init__(key)
        self.value = value


keyspace = HMap()

# --- commands ------------------------------------------------------------------
# A command takes its arguments (the name excluded) and appends its reply to
# `out`, the connection's output buffer.

Command = Callable[[list[bytes], ReplyBuffer], None]


def ping(args: list[bytes], out: ReplyBuffer) -> None:
    if len(args) > 1:  # Redis checks PING's upper bound itself, as here
        out.error(wrong_arity_message(b"ping"))
    elif args:
        out.bulk(args[0])
    else:
        out.simple("PONG")


def echo(args: list[bytes], out: ReplyBuffer) -> None:
    out.bulk(args[0])


def get(args: list[bytes], out: ReplyBuffer) -> None:
    entry = keyspace.lookup(args[0])
    if entry is None:
        out.null()
    else:
        out.bulk(entry.value)


def set_(args: list[bytes], out: ReplyBuffer) -> None:
    if len(args) != 2:  # SET's options (EX, PX, NX, ...) arrive in chapter 13
        out.error("ERR syntax error")
        return
    entry = keyspace.lookup(args[0])
    if entry is None:
        keyspace.insert(Entry(args[0], args[1]))
    else:
        entry.value = args[1]
    out.simple("OK")


def del_(args: list[bytes], out: ReplyBuffer) -> None:
    removed = 0
    for key in args:
        if keyspace.pop(key) is not None:
            removed += 1
    out.integer(removed)


def exists(args: list[bytes], out: ReplyBuffer) -> None:
    """How many of the keys exist (a key named twice counts twice, as in Redis)."""
    out.integer(sum(1 for key in args if keyspace.lookup(key) is not None))


def type_(args: list[bytes], out: ReplyBuffer) -> None:
    out.simple("none" if keyspace.lookup(args[0]) is None else "string")


def keys(args: list[bytes], out: ReplyBuffer) -> None:
    """KEYS pattern: every key matching a Redis glob pattern (O(n): a tool
    for learning and debugging, not for production, as Redis warns)."""
    names = [entry.key for entry in keyspace]
    # The longest key bounds what compiling the pattern may cost (common/glob.py).
    matches = compile_glob(args[0], max(map(len, names), default=0))
    out.bulk_array([name for name in names if matches(name)])


def dbsize(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(len(keyspace))


def flushdb(args: list[bytes], out: ReplyBuffer) -> None:
    """FLUSHDB / FLUSHALL [SYNC]: delete every key (we have one database)."""
    if args and (len(args) > 1 or args[0].lower() != b"sync"):
        # ASYNC, which frees memory in the background, arrives with threads in chapter 14.
        out.error("ERR syntax error")
        return
    keyspace.clear()
    out.simple("OK")


def hello(args: list[bytes], out: ReplyBuffer) -> None:
    """HELLO [protover [AUTH username password] [SETNAME name]]: choose RESP2
    or RESP3 for this connection and describe the server, as a map."""
    protocol = out.protocol
    if args:
        protocol = parse_integer(args[0])
        if protocol is None:
            out.error("ERR Protocol version is not an integer or out of range")
            return
        if protocol not in (2, 3):
            out.error("NOPROTO unsupported protocol version")
            return
    username = client_name = None
    i = 1
    while i < len(args):
        option, more = args[i].lower(), len(args) - 1 - i
        if option == b"auth" and more >= 2:
            username = args[i + 1]
            i += 3
        elif option == b"setname" and more >= 1:
            client_name = args[i + 1]
            i += 2
        else:
            out.error(f"ERR Syntax error in HELLO option '{args[i].decode(errors='surrogateescape')}'")
            return
    # With no password configured, Redis's only user, "default", takes any
    # password; we have no other users.
    if username is not None and username != b"default":
        out.error("WRONGPASS invalid username-password pair or user is disabled.")
        return
    # Redis shows the name in CLIENT LIST, which we do not have; we check it
    # as Redis does, and keep nothing.
    if client_name is not None and any(byte < ord("!") or byte > ord("~") for byte in client_name):
        out.error("ERR Client names cannot contain spaces, newlines or special characters.")
        return
    out.protocol = protocol
    out.map(7)
    for field, value in [
        (b"server", b"redis"),
        (b"version", REDIS_VERSION),
        (b"proto", protocol),
        (b"id", out.client_id),
        (b"mode", b"standalone"),
        (b"role", b"master"),
    ]:
        out.bulk(field)
        if isinstance(value, int):
            out.integer(value)
        else:
            out.bulk(value)
    out.bulk(b"modules")
    out.array(0)


def command(args: list[bytes], out: ReplyBuffer) -> None:
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
        out.integer(len(COMMANDS))
    elif subcommand == b"info":
        write_command_infos(out, [name.lower() for name in args[1:]] or list(COMMANDS))
    elif subcommand == b"help" and len(args) == 1:
        write_help(out, "COMMAND", COMMAND_HELP)
    elif subcommand in (b"count", b"help"):
        out.error(wrong_arity_message(b"command|" + subcommand))
    else:
        out.error(unknown_subcommand_message(args[0], "COMMAND"))


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


def write_command_infos(out: ReplyBuffer, names: list[bytes]) -> None:
    """Redis 7's ten-field description of each command, nil for unknown names."""
    out.array(len(names))
    for name in names:
        spec = COMMANDS.get(name)
        if spec is None:
            out.null()
            continue
        out.array(10)
        out.bulk(name)
        out.integer(spec.arity)
        out.array(len(spec.flags))
        for flag in spec.flags:
            out.simple(flag)
        out.integer(spec.first_key)
        out.integer(spec.last_key)
        out.integer(spec.key_step)
        for _ in range(4):  # ACL categories, tips, key specs, subcommands: none here
            out.array(0)


def client(args: list[bytes], out: ReplyBuffer) -> None:
    """CLIENT SETINFO LIB-NAME|LIB-VER value, which redis-py sends on connect.

    We check the attribute as Redis does and accept it; nothing in this
    server reports it back (Redis shows it in CLIENT LIST).
    """
    subcommand = args[0].lower()
    if subcommand == b"setinfo" and len(args) == 3:
        attribute = args[1].lower()
        if attribute not in (b"lib-name", b"lib-ver"):
            out.error(f"ERR Unrecognized option '{args[1].decode(errors='surrogateescape')}'")
        elif any(byte < ord("!") or byte > ord("~") for byte in args[2]):
            out.error(f"ERR {attribute.decode()} cannot contain spaces, newlines or special characters.")
        else:
            out.simple("OK")
    elif subcommand == b"help" and len(args) == 1:
        write_help(out, "CLIENT", CLIENT_HELP)
    elif subcommand in (b"setinfo", b"help"):
        out.error(wrong_arity_message(b"client|" + subcommand))
    else:
        out.error(unknown_subcommand_message(args[0], "CLIENT"))


CLIENT_HELP = [
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "HELP",
    "    Prints this help.",
]


def write_help(out: ReplyBuffer, container: str, lines: list[str]) -> None:
    """The reply to CONTAINER HELP: status lines, as Redis writes them."""
    header = f"{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    out.array(len(lines) + 1)
    for line in [header, *lines]:
        out.simple(line)


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
    b"exists": CommandSpec(exists, -2, ("readonly", "fast"), 1, -1, 1),
    b"type": CommandSpec(type_, 2, ("readonly", "fast"), 1, 1, 1),
    b"keys": CommandSpec(keys, 2, ("readonly",)),
    b"dbsize": CommandSpec(dbsize, 1, ("readonly", "fast")),
    b"flushdb": CommandSpec(flushdb, -1, ("write",)),
    b"flushall": CommandSpec(flushdb, -1, ("write",)),
    b"hello": CommandSpec(hello, -1, ("noscript", "loading", "stale", "fast")),
    b"command": CommandSpec(command, -1, ("loading", "stale")),
    b"client": CommandSpec(client, -2, ("noscript", "loading", "stale")),
}


def execute(request: list[bytes], out: ReplyBuffer) -> None:
    """Run one request and append its reply, or Redis's error for it."""
    name = request[0].lower()
    spec = COMMANDS.get(name)
    if spec is None:
        out.error(unknown_command_message(request))
        return
    count = len(request)
    if (spec.arity > 0 and count != spec.arity) or (spec.arity < 0 and count < -spec.arity):
        out.error(wrong_arity_message(name))
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

    def __init__(self, sock: socket.socket, client_id: int) -> None:
        self.sock = sock
        self.parser = RequestParser()
        self.outgoing = ReplyBuffer(client_id)  # replies not yet sent, in the client's protocol
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
        out.error(f"ERR {error}")
        conn.closing = True
    except Exception:
        # A bug in a command must cost this one connection, not the server.
        log.exception("internal error while executing a request; closing the connection")
        out.error("ERR internal error")
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


# Every connection gets the next number, as Redis's client ids.
client_ids = itertools.count(1)


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
        conn = Connection(sock, next(client_ids))
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
    options = parse_options("Chapter 09: typed replies and RESP3")
    with create_listener(options.host, options.port) as listener:
        log.info("listening on %s:%d", options.host, options.port)
        serve(lambda: run_event_loop(listener))


if __name__ == "__main__":
    main()
