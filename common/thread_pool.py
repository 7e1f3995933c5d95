"""A fixed pool of worker threads fed from a queue, built from a lock and a
condition variable, as the book builds it from pthreads.

Introduced in chapter 14 (Thread Pool & Asynchronous Tasks). Some work is
too slow for the event loop, which must answer every client promptly:
freeing a sorted set of a million members takes the best part of a second.
The event loop hands such work to the pool and goes back to its clients.

The mechanism is the book's: a deque of tasks guarded by one lock; workers
sleep on a condition variable until a task arrives (`notify` wakes one);
`shutdown` sets a flag and wakes them all so they can finish and exit.

About the GIL, honestly: in CPython only one thread runs Python bytecode
at a time. A worker running pure-Python code does not run in parallel
with the event loop; it shares the interpreter with it, which switches
threads every few milliseconds (sys.getswitchinterval()) or whenever a
thread blocks. So the pool helps when the work releases the GIL (I/O, some
C extensions), or when it is cut into small slices that let the
interpreter switch back to the event loop between them: one huge
uninterruptible step (like dropping the last reference to a huge object,
which frees it all in one C call) would block the event loop just the same.
Chapter 14's server therefore tears sorted sets down slice by slice.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class ThreadPool:
    """`num_threads` daemon workers running submitted tasks in FIFO order.

    A task that raises is logged and does not stop its worker. Use as a
    context manager, or call shutdown() when done.
    """

    def __init__(self, num_threads: int, name: str = "worker") -> None:
        if num_threads < 1:
            raise ValueError("a pool needs at least one thread")
        self._tasks: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)  # signalled when a task is queued
        self._idle = threading.Condition(self._lock)  # signalled when a task finishes
        self._running = 0  # tasks taken by a worker and not finished yet
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(num_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """Queue `function(*args)` to run on a worker thread."""
        with self._lock:
            if self._closed:
                raise RuntimeError("submit() after shutdown()")
            self._tasks.append((function, args))
            self._not_empty.notify()

    def pending(self) -> int:
        """Tasks queued or running."""
        with self._lock:
            return len(self._tasks) + self._running

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no task is queued or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._tasks and not self._running, timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting tasks; workers finish what is queued, then exit."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _work(self) -> None:
        # The process's signals (SIGTERM, Ctrl-C, the SIGALRM tick of
        # common/net.py's serve) go to the main thread, never here: the
        # kernel hands a process signal to any thread not blocking it, and
        # one received by a worker would not wake the event loop's poll().
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGALRM})
        while True:
            with self._lock:
                while not self._tasks and not self._closed:
                    self._not_empty.wait()
                if not self._tasks:  # closed and drained
                    return
                function, args = self._tasks.popleft()
                self._running += 1
            try:
                function(*args)
            except Exception:
                log.exception("task %r failed", function)
            finally:
                with self._lock:
                    self._running -= 1
                    self._idle.notify_all()
