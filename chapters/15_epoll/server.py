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
both.

Everything else is chapter 14's, imported unchanged (common/chapters.py):
its event loop runs on any object with poll()'s interface (register,
modify, unregister, poll), as Redis's ae.c runs one loop on whichever of
select, poll, epoll or kqueue the system has (ae_epoll.c is ~130 lines of
C). What is new: that object for epoll, and raising the open-files limit
so that --maxclients 10000 (Redis's default) can be met.

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
from common.net import RESERVED_FDS, parse_options, raise_open_files_limit  # noqa: E402

chapter14 = load_chapter(14)  # the server this chapter changes: all but the kernel API its loop waits in

# At most this many ready descriptors per epoll_wait(); more wait for the next round.
MAX_EVENTS = 1024

# The same bits, so that chapter 14's handlers read epoll's events as poll()'s.
assert (select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP) == (
    select.POLLIN, select.POLLOUT, select.POLLERR, select.POLLHUP)  # fmt: skip


class EpollPoller:
    """What chapter 14's loop waits on (a Poller, as select.poll() is), on
    epoll: the same four calls, each one system call."""

    api = "epoll"  # INFO's multiplexing_api

    def __init__(self) -> None:
        # epoll_create1(): the kernel object that holds the interest list.
        self.epoll = select.epoll()
        # epoll_ctl() for one descriptor each, where poll() would rebuild
        # its whole array at the next wait.
        self.register, self.modify, self.unregister = self.epoll.register, self.epoll.modify, self.epoll.unregister

    def poll(self, timeout_ms: int | None) -> list[tuple[int, int]]:
        # epoll_wait(): only the ready descriptors come back, however many
        # are registered. The timeout is in seconds here (poll(): ms).
        return self.epoll.poll(None if timeout_ms is None else timeout_ms / 1000, MAX_EVENTS)


def main() -> None:
    options = parse_options("Chapter 15: epoll and ten thousand clients", chapter14.add_options, client_limits=True)
    raise_open_files_limit(options.maxclients + RESERVED_FDS)
    chapter14.configure(options)
    chapter14.run(options, EpollPoller)


if __name__ == "__main__":
    main()
