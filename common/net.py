"""Plumbing every chapter's server shares: command-line options, the
listening socket, logging and a clean shutdown.

Introduced in chapter 03 (TCP Server and Client). `create_listener` is that
chapter's lesson: the socket(), setsockopt(), bind() and listen() calls every
server in the book starts with. The rest keeps the chapters' server.py files
about their own lesson rather than about argparse.

Servers use the standard library only. If `rich` is installed (it is in the
project's virtual environment) logs are coloured; otherwise plain logging.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import NoReturn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379  # Redis's port, so redis-cli and redis-benchmark need no -p

log = logging.getLogger("redis")


def parse_options(
    description: str, add_options: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """Parse --host, --port and --verbose, plus any chapter-specific options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every connection")
    if add_options is not None:
        add_options(parser)
    options = parser.parse_args()
    setup_logging(options.verbose)
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
        fail(f"cannot listen on {host}:{port}: {error.strerror}")
    # 511 is Redis's tcp-backlog: how many connections the kernel queues
    # for us before accept() takes them.
    listener.listen(backlog)
    return listener


def fail(message: str) -> NoReturn:
    log.error(message)
    sys.exit(1)


def serve(run: Callable[[], None]) -> None:
    """Call `run()` until Ctrl-C or SIGTERM, then exit cleanly.

    SIGTERM (what `kill` and test harnesses send) is turned into the same
    KeyboardInterrupt as Ctrl-C, so both unwind the stack, close sockets via
    their `with` blocks and end with status 0 instead of a traceback.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        run()
    except KeyboardInterrupt:
        log.info("shutting down")
