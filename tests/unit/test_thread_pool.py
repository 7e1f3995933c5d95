"""common/thread_pool.py: tasks run, concurrently, and survive failures."""

import logging
import signal
import threading

import pytest

from common.thread_pool import ThreadPool

pytestmark = pytest.mark.since(14)


def test_every_task_runs():
    results = []
    lock = threading.Lock()

    def record(value):
        with lock:
            results.append(value)

    with ThreadPool(3) as pool:
        for i in range(100):
            pool.submit(record, i)
    assert sorted(results) == list(range(100))


def test_tasks_run_concurrently():
    """Two tasks that each wait for the other: a serial pool would time out."""
    barrier = threading.Barrier(2, timeout=10)
    passed = []
    with ThreadPool(2) as pool:
        for _ in range(2):
            pool.submit(lambda: passed.append(barrier.wait()))
    assert sorted(passed) == [0, 1]


def test_a_failing_task_does_not_kill_its_worker(caplog):
    results = []
    with caplog.at_level(logging.ERROR), ThreadPool(1) as pool:
        pool.submit(lambda: 1 / 0)
        pool.submit(results.append, "after")
        assert pool.wait_idle(timeout=10)
    assert results == ["after"]
    assert "ZeroDivisionError" in caplog.text


def test_shutdown_finishes_queued_tasks_then_refuses_more():
    release = threading.Event()
    done = []
    pool = ThreadPool(1)
    pool.submit(release.wait, 10)
    for i in range(5):
        pool.submit(done.append, i)
    assert pool.pending() == 6
    release.set()
    pool.shutdown()
    assert done == [0, 1, 2, 3, 4]
    assert pool.pending() == 0
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_workers_leave_the_process_signals_to_the_main_thread():
    """A SIGTERM taken by a worker would not wake the event loop's poll();
    so workers block it, and the kernel delivers it to the main thread."""
    masks = []
    with ThreadPool(1) as pool:
        pool.submit(lambda: masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        pool.wait_idle()
    assert masks and {signal.SIGTERM, signal.SIGINT, signal.SIGALRM} <= set(masks[0])
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the main thread's own mask
