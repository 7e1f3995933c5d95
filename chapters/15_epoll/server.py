"""Chapter 15 (beyond the book): epoll, and ten thousand clients.

The book's event loop ends with poll() and a remark: a production server
would use epoll, which keeps the descriptors in the kernel so they are not
copied on every iteration. This chapter takes that step.

poll(), each iteration: the whole array of descriptors (10,000 idle
clients: 10,000 entries) goes into the kernel, the kernel checks every one
of them, and the array comes back. The cost grows with the clients
connected, however few of them are active.

epoll: the interest list lives in the kernel, set once per descriptor
(`epoll_ctl`, here `register`/`modify`/`unregister`), and the kernel keeps
a ready list as data arrives. `epoll_wait` (here `poll()`) only copies out
the descriptors that are ready: its cost grows with the active clients,
not the connected ones.

The loop is level-triggered, as poll() is: a descriptor is reported as
long as it is readable or writable. Edge-triggered epoll reports a change
once, so a handler must read until EAGAIN or lose the wake-up; chapter 14's
handlers read one buffer per event and deliberately stop reading a client
whose output is full (backpressure), so level-triggered is what keeps them
correct unchanged. EPOLLIN, EPOLLOUT, EPOLLERR and EPOLLHUP have the same
values as their POLL* namesakes, so a connection's wanted_events() serves
both loops.

Everything else is chapter 14's, imported unchanged (common/chapters.py):
the keyspace, commands, TTLs, idle timers, the lazy-free thread pool, and
the connection handlers. What is new: this loop, and raising the
open-files limit so that --maxclients 10000 (Redis's default) can be met.

    make run-chapter 15
    make demo-chapter 15        # c10k_bench.py: poll against epoll against Redis
"""

from __future__ import annotations

import select
import sys
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.net import RESERVED_FDS, Acceptor, parse_options, raise_open_files_limit  # noqa: E402

chapter14 = load_chapter(14)  # the server this chapter changes: all but its event loop

# At most this many ready descriptors per epoll_wait(); more wait for the next round.
MAX_EVENTS = 1024


def run_event_loop(acceptor: Acceptor) -> None:
    listener = acceptor.listener
    listener.setblocking(False)
    clients: dict[int, chapter14.Connection] = {}
    chapter14.ADMIN.serve(acceptor, clients, count_cycles=True)
    # epoll_create1(): the kernel object that holds the interest list.
    with select.epoll() as epoll:
        epoll.register(listener, select.EPOLLIN)
        listener_fd = listener.fileno()
        while True:
            timeout_ms = chapter14.next_timer_ms()
            # epoll_wait(): only the ready descriptors come back, however
            # many are registered. The timeout is in seconds here (poll(): ms).
            ready = epoll.poll(None if timeout_ms is None else timeout_ms / 1000, MAX_EVENTS)
            for fd, events in ready:
                if fd == listener_fd:
                    # accept_clients and close_client call register() and
                    # unregister(): each one epoll_ctl() for that descriptor.
                    chapter14.accept_clients(acceptor, epoll, clients)
                else:
                    # modify() on a change of interest: one epoll_ctl() for
                    # this descriptor, where poll() rebuilt its whole array.
                    chapter14.handle_events(clients[fd], events, epoll, clients)
            chapter14.close_idle_connections(epoll, clients)
            chapter14.expire_keys()
            chapter14.ADMIN.eventloop_cycles += 1


def main() -> None:
    options = parse_options("Chapter 15: epoll and ten thousand clients", chapter14.add_options, client_limits=True)
    raise_open_files_limit(options.maxclients + RESERVED_FDS)
    chapter14.configure(options)
    chapter14.serve_with(run_event_loop, options)


if __name__ == "__main__":
    main()
