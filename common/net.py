"""Plumbing every chapter's server shares: command-line options, the
listening socket, logging and a clean shutdown.

Introduced in chapter 03 (TCP Server and Client). `create_listener` is that
chapter's lesson: the socket(), setsockopt(), bind() and listen() calls every
server in the book starts with. The rest keeps the chapters' server.py files
about their own lesson rather than about argparse.

From chapter 06 (Event Loop), `Acceptor` takes connections off the
listening socket within a limit of clients, as Redis's maxclients does: a
server that holds every connection open must not run out of file
descriptors, and must not spin when it does.

Servers use the standard library only. If `rich` is installed (it is in the
project's virtual environment) logs are coloured; otherwise plain logging.
"""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

from common.config import memory_argument
from common.resp import RequestParser

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379  # Redis's port, so redis-cli and redis-benchmark need no -p
DEFAULT_MAX_CLIENTS = 10_000  # Redis's maxclients
# Descriptors kept for the server's own use (listener, log, poller, ...),
# as Redis's CONFIG_MIN_RESERVED_FDS.
RESERVED_FDS = 32
MAX_CLIENTS_ERROR = b"-ERR max number of clients reached\r\n"

log = logging.getLogger("redis")


def parse_options(
    description: str,
    add_options: Callable[[argparse.ArgumentParser], None] | None = None,
    client_limits: bool = False,
) -> argparse.Namespace:
    """Parse --host, --port and --verbose, plus any chapter-specific options.

    With `client_limits` (the event-loop servers), also Redis's limits on
    clients: --maxclients (for an `Acceptor`), and the request parser's
    --client-query-buffer-limit and --proto-max-bulk-len, which are set on
    RequestParser here, for every connection.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every connection")
    if client_limits:
        parser.add_argument(
            "--maxclients", type=int, default=DEFAULT_MAX_CLIENTS, metavar="N",
            help="refuse clients past this many (default: %(default)s, lowered to fit the open-files limit)",
        )  # fmt: skip
        parser.add_argument(
            "--client-query-buffer-limit", type=memory_argument, default=RequestParser.max_query_buffer,
            metavar="SIZE", help="close a client whose unexecuted input passes this (default: 1gb)",
        )  # fmt: skip
        parser.add_argument(
            "--proto-max-bulk-len", type=memory_argument, default=RequestParser.max_bulk_length,
            metavar="SIZE", help="the longest argument a client may send (default: 512mb)",
        )  # fmt: skip
    if add_options is not None:
        add_options(parser)
    options = parser.parse_args()
    setup_logging(options.verbose)
    if client_limits:
        RequestParser.max_query_buffer = options.client_query_buffer_limit
        RequestParser.max_bulk_length = options.proto_max_bulk_len
    return options


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    try:
        from rich.logging import RichHandler
    except ImportError:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    else:
        logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[RichHandler(show_path=False)])


def create_listener(host: str, port: int, backlog: int = 511) -> socket.socket:
    """Return a TCP socket bound to (host, port) and listening.

    Exits with a clear message, not a traceback, if the port is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # Without SO_REUSEADDR a restarted server cannot bind its port until the
    # previous run's connections leave TIME_WAIT, a minute or so later.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            fail(
                f"port {port} on {host} is already in use: is another server running? "
                f"Choose another port with --port (make run-chapter N PORT={port + 1})."
            )
        fail(f"cannot listen on {host}:{port}: {error_text(error)}")
    # 511 is Redis's tcp-backlog: how many connections the kernel queues
    # for us before accept() takes them.
    listener.listen(backlog)
    return listener


def error_text(error: Exception) -> str:
    """What went wrong, as Redis words it: for an OSError the C library's
    text alone (strerror(), "No space left on device"), without Python's
    "[Errno 28]" prefix and file name; any other error as str() gives it."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def fail(message: str) -> NoReturn:
    log.error(message)
    sys.exit(1)


def serve(run: Callable[[], None]) -> None:
    """Call `run()` until Ctrl-C or SIGTERM, then exit cleanly.

    SIGTERM (what `kill` and test harnesses send) is turned into the same
    KeyboardInterrupt as Ctrl-C, so both unwind the stack, close sockets via
    their `with` blocks and end with status 0 instead of a traceback.

    Python runs a signal's handler between two bytecodes of the main
    thread, not when the signal arrives: one that arrives just before the
    event loop goes to sleep in poll() is noted, and then waits as long as
    the sleep, which may be for ever. So, as Redis's handler only sets
    shutdown_asap for serverCron to act on ten times a second, a stop is
    noted here and also acted on by a tick (SIGALRM) every STOP_CHECK_SECONDS,
    which wakes any sleep.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _request_stop)
    signal.signal(signal.SIGALRM, _stop_if_requested)
    signal.setitimer(signal.ITIMER_REAL, STOP_CHECK_SECONDS, STOP_CHECK_SECONDS)
    freeze_survivors()
    try:
        run()
    except KeyboardInterrupt:
        log.info("shutting down")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


STOP_CHECK_SECONDS = 0.1
_stop_requested = False


def _request_stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGINT: note the stop, and act on it at once if we can."""
    global _stop_requested
    _stop_requested = True
    _stop_if_requested(signum, frame)


def _stop_if_requested(signum: int, frame: FrameType | None) -> None:
    """Also the tick's handler: raise the KeyboardInterrupt that stops serve().

    Not inside the garbage collector's callback (freeze_survivors), where
    Python prints and drops an exception: the server would go on. There, the
    next tick tries again."""
    global _stop_requested
    if not _stop_requested or (frame is not None and frame.f_code is _after_collection.__code__):
        return
    _stop_requested = False
    raise KeyboardInterrupt


def freeze_survivors() -> None:
    """Keep Python's cyclic garbage collector from stopping the server.

    The collector's full passes walk every tracked object: with a million
    keys (chapter 08's nodes are objects) one pass takes about a second,
    measured, and during it no client is served. Nothing in the keyspace
    needs it: values free themselves by reference counting, and a sorted
    set, whose tree links do make cycles, is dismantled when dropped
    (chapter 11's discard). So after each collection of the younger
    generations, the objects that survived it are frozen (gc.freeze, meant
    for long-lived objects): the full passes then find almost nothing to
    walk. Young cycles, such as an exception's traceback, are still
    collected as before; a long-lived cycle dropped without being broken
    would stay, which is why every chapter breaks its own.

    Introduced with chapter 08's hashtable; every server calls it through serve().
    """
    if _after_collection not in gc.callbacks:
        gc.callbacks.append(_after_collection)


def _after_collection(phase: str, info: dict[str, int]) -> None:
    """gc.callbacks entry: freeze what survived a collection of generation 1 or 2."""
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


def max_clients_for_fd_limit(requested: int) -> int:
    """`requested`, lowered if the process's open-files limit (ulimit -n)
    cannot hold that many clients plus RESERVED_FDS, as Redis does at
    start-up (chapter 15 raises the limit instead)."""
    soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY or soft_limit >= requested + RESERVED_FDS:
        return requested
    allowed = max(soft_limit - RESERVED_FDS, 1)
    log.warning(
        "maxclients %d needs %d file descriptors, but the open-files limit is %d: maxclients is %d",
        requested, requested + RESERVED_FDS, soft_limit, allowed,
    )  # fmt: skip
    return allowed


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft open-files limit (ulimit -n) toward `wanted`
    descriptors, as far as the hard limit allows, as Redis does at start-up
    for maxclients; returns how many of the `wanted` the limit now allows.

    Introduced in chapter 15: with epoll ten thousand clients cost little,
    but a default soft limit of 1024 descriptors would still cap them. An
    unprivileged process may raise its soft limit up to the hard one; what
    remains short, max_clients_for_fd_limit() takes off maxclients. The
    C10k benchmark and its test raise their own limit with it too.
    """
    soft_limit, hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY or soft_limit >= wanted:
        return wanted
    target = wanted if hard_limit == resource.RLIM_INFINITY else min(wanted, hard_limit)
    if target <= soft_limit:
        return soft_limit
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard_limit))
    except (ValueError, OSError) as error:
        log.warning("could not raise the open-files limit from %d to %d: %s", soft_limit, target, error_text(error))
        return soft_limit
    log.info("open-files limit raised from %d to %d", soft_limit, target)
    return target


class Acceptor:
    """Takes connections off a listening socket, refusing those past
    `max_clients` with Redis's error.

    Usage, when the listener is readable::

        while (accepted := acceptor.accept(len(clients))) is not None:
            sock, address = accepted  # a new client, as socket.accept() returns it

    A listener stays readable while connections wait in its queue, so a
    server that cannot accept them (out of descriptors: EMFILE) would be
    woken again at once, for ever. The acceptor keeps one descriptor spare:
    on EMFILE it frees it, accepts, refuses and closes that connection,
    and takes the spare back, so the queue drains and the loop sleeps.
    """

    def __init__(self, listener: socket.socket, max_clients: int) -> None:
        self.listener = listener
        self.max_clients = max_clients
        self.accepted = 0  # connections accepted (INFO's total_connections_received)
        self.refused = 0  # connections refused (INFO's rejected_connections)
        self._spare_fd: int | None = os.open(os.devnull, os.O_RDONLY)
        self._last_warning = 0.0

    def accept(self, clients: int) -> tuple[socket.socket, Any] | None:
        """The next waiting connection, while `clients` (the number already
        connected) is below max_clients; None once the queue is empty."""
        while True:
            try:
                sock, address = self.listener.accept()
            except BlockingIOError:
                return None
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE) and self._spare_fd is not None:
                    self._refuse_with_spare_fd()
                    continue
                self._warn(f"accept failed: {error_text(error)}")  # e.g. ECONNABORTED: the next one may do
                return None
            if clients < self.max_clients:
                self.accepted += 1
                return sock, address
            self._refuse(sock)

    def _refuse(self, sock: socket.socket) -> None:
        self.refused += 1
        try:
            sock.setblocking(False)
            sock.send(MAX_CLIENTS_ERROR)  # fits any socket buffer; if not, the client gets less
        except OSError:
            pass
        sock.close()
        self._warn("refused a client: max number of clients reached")

    def _refuse_with_spare_fd(self) -> None:
        assert self._spare_fd is not None
        os.close(self._spare_fd)
        self._spare_fd = None
        try:
            sock, _ = self.listener.accept()
        except OSError:
            sock = None
        if sock is not None:
            self._refuse(sock)
        try:
            self._spare_fd = os.open(os.devnull, os.O_RDONLY)
        except OSError:
            pass  # another descriptor took it; next time EMFILE is only logged
        self._warn("out of file descriptors: refusing clients (lower --maxclients or raise ulimit -n)")

    def _warn(self, message: str) -> None:
        """Log at most once a second: a flood of clients must not become a flood of log."""
        now = time.monotonic()
        if now - self._last_warning >= 1.0:
            self._last_warning = now
            log.warning(message)
