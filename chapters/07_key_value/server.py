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
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.admin import ServerAdmin  # noqa: E402
from common.commands import CommandSpec, CommandTable, wrong_arity_message  # noqa: E402
from common.net import Acceptor, create_listener, log, max_clients_for_fd_limit, parse_options, serve  # noqa: E402
from common.resp import (  # noqa: E402
    ProtocolError,
    RequestParser,
    write_bulk,
    write_error,
    write_integer,
    write_null,
    write_simple,
)

# Bytes read per event, as Redis (PROTO_IOBUF_LEN): every request in them
# runs before any other client is served, so a pipelining client may hold
# the loop that long (chapter 06's README measures it).
RECV_SIZE = 16 * 1024
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



# Dispatch, arity checks, error texts, COMMAND, CLIENT and QUIT: common/commands.py.
COMMANDS = CommandTable(
    {
        b"ping": CommandSpec(ping, -1, ("fast",)),
        b"echo": CommandSpec(echo, 2, ("fast",)),
        b"get": CommandSpec(get, 2, ("readonly", "fast"), 1, 1, 1),
        b"set": CommandSpec(set_, -3, ("write", "denyoom"), 1, 1, 1),
        b"del": CommandSpec(del_, -2, ("write",), 1, -1, 1),
    }
)
# INFO, CONFIG and SELECT: common/admin.py.
ADMIN = ServerAdmin(COMMANDS, keys=lambda: len(keyspace))


# --- connections -------------------------------------------------------------


class Connection:
    """One client's socket and the state kept for it between events."""

    __slots__ = ("sock", "parser", "outgoing", "closing", "input_closed", "polled_events")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = RequestParser()
        self.outgoing = bytearray()  # replies not yet sent
        self.closing = False  # close once the outgoing replies are sent
        self.input_closed = False  # the client sends no more: close once all it sent is answered
        self.polled_events = select.POLLIN  # what the poller waits for now

    def wanted_events(self) -> int:
        """What to poll for: output while replies wait; input while the
        client may send more and its requests are not held back by
        MAX_OUTPUT. Not reading a client that does not read its replies
        leaves its requests in the kernel's buffers, and TCP's flow control
        then stops the sender, instead of our memory growing without end."""
        events = select.POLLOUT if self.outgoing else 0
        if not (self.closing or self.input_closed) and len(self.outgoing) < MAX_OUTPUT:
            events |= select.POLLIN
        return events


def handle_readable(conn: Connection) -> None:
    try:
        data = conn.sock.recv(RECV_SIZE)
    except BlockingIOError:
        return  # spurious wakeup: nothing to read after all
    except OSError:  # e.g. reset by the client: nobody left to answer
        abandon(conn)
        return
    if not data:
        # The client will send no more, but may still read (a half-close).
        # Every request it sent is executed and answered before we close,
        # those held back by MAX_OUTPUT too, as its output drains.
        conn.input_closed = True
        return
    conn.parser.feed(data)
    if conn.parser.pending_bytes() > conn.parser.max_query_buffer:
        # Redis's client-query-buffer-limit: this client's unexecuted input
        # would grow without bound. Redis closes it without a reply.
        log.warning("closing a client past the query buffer limit (%d bytes)", conn.parser.max_query_buffer)
        conn.closing = True
        conn.outgoing.clear()
        return
    execute_requests(conn)
    # Most replies fit in the socket buffer: send now instead of waiting a
    # round of poll() to learn that the socket is writable.
    handle_writable(conn)


def execute_requests(conn: Connection) -> None:
    """Answer every complete request buffered, while the output is not too big."""
    out = conn.outgoing
    try:
        while len(out) < MAX_OUTPUT and (request := conn.parser.next_request()) is not None:
            if COMMANDS.process_command(request, out):  # QUIT: reply, close, run nothing after it
                conn.closing = True
                break
    except ProtocolError as error:
        write_error(out, f"ERR {error}")
        conn.closing = True
    except Exception:
        # A bug in a command must cost this one connection, not the server.
        log.exception("internal error while executing a request; closing the connection")
        write_error(out, "ERR internal error")
        conn.closing = True


def abandon(conn: Connection) -> None:
    """The client is gone: nobody will read replies any more. Requests it
    sent that MAX_OUTPUT held back are executed all the same, their
    replies dropped (Redis, which executes requests as they arrive, would
    have run them already); then the connection closes. Not after a
    protocol error or QUIT: what follows those is never executed."""
    conn.outgoing.clear()
    while not conn.closing and conn.parser.buffered():
        execute_requests(conn)
        if len(conn.outgoing) < MAX_OUTPUT:
            break  # no complete request left
        conn.outgoing.clear()
    conn.closing = True
    conn.outgoing.clear()


def handle_writable(conn: Connection) -> None:
    try:
        sent = conn.sock.send(conn.outgoing)
    except BlockingIOError:
        return  # the kernel's buffer is full: poll() will tell us when not
    except OSError:
        abandon(conn)
        return
    # Deleting from the front of a bytearray moves its start pointer in
    # CPython; the unsent rest is not copied.
    del conn.outgoing[:sent]
    if len(conn.outgoing) < MAX_OUTPUT and not conn.closing and conn.parser.buffered():
        # Requests held back by MAX_OUTPUT can run now.
        execute_requests(conn)


# --- the event loop --------------------------------------------------------------


def accept_clients(acceptor: Acceptor, poller: select.poll, clients: dict[int, Connection]) -> None:
    """Accept every connection waiting in the listen queue; past
    maxclients the acceptor refuses them with Redis's error."""
    while (accepted := acceptor.accept(len(clients))) is not None:
        sock, address = accepted
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


def run_event_loop(acceptor: Acceptor) -> None:
    listener = acceptor.listener
    listener.setblocking(False)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    listener_fd = listener.fileno()
    clients: dict[int, Connection] = {}
    ADMIN.serve(acceptor, clients)
    while True:
        for fd, events in poller.poll():
            if fd == listener_fd:
                accept_clients(acceptor, poller, clients)
                continue
            conn = clients[fd]
            # POLLHUP/POLLERR come without POLLIN on some systems; recv()
            # then reports what happened.
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                handle_readable(conn)
            if events & select.POLLOUT and conn.outgoing:
                handle_writable(conn)
            if (conn.closing or conn.input_closed) and not conn.outgoing:
                close_client(conn, poller, clients)
                continue
            wanted = conn.wanted_events()
            if wanted != conn.polled_events:
                # Only on change: every modify() makes the next poll()
                # rebuild its array of all descriptors.
                poller.modify(fd, wanted)
                conn.polled_events = wanted


def main() -> None:
    options = parse_options("Chapter 07: a key-value server", client_limits=True)
    with create_listener(options.host, options.port) as listener:
        log.info("listening on %s:%d", options.host, options.port)
        acceptor = Acceptor(listener, max_clients_for_fd_limit(options.maxclients))
        serve(lambda: run_event_loop(acceptor))


if __name__ == "__main__":
    main()
