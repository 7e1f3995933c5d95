"""common/net.py: the garbage-collector policy every server runs with
(freeze_survivors), and serve()'s stop on SIGTERM."""

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.since(8)

SCRIPT = textwrap.dedent(
    """
    import gc, weakref
    from common.net import freeze_survivors

    class Node:
        pass

    freeze_survivors()
    keep = [Node() for _ in range(100_000)]  # long-lived, like a keyspace's nodes
    gc.collect(1)
    frozen = gc.get_freeze_count()

    cycle = Node()
    cycle.me = cycle  # young garbage with a cycle, like an exception's traceback
    alive = weakref.ref(cycle)
    del cycle
    gc.collect(0)
    print(frozen, alive() is None, len(gc.get_objects(2)))
    """
)


def test_survivors_are_frozen_and_young_cycles_still_collected():
    """After a collection of the young generations, what survived is frozen,
    so a full collection no longer walks a million keys; young garbage
    cycles are collected as before."""
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True)
    frozen, collected, oldest = result.stdout.split()
    assert int(frozen) >= 100_000
    assert collected == "True"
    assert int(oldest) < 1_000  # the full pass has next to nothing left to walk


def assert_stops_on_sigterm(script: str, timeout: float) -> None:
    """Run `script` (it prints "ready" once serving), send SIGTERM: it must end cleanly within `timeout`."""
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=timeout)
    finally:
        process.kill()
    assert process.returncode == 0 and "clean exit" in output, output


BUSY_COLLECTING = textwrap.dedent(
    """
    import gc
    from common.net import serve

    keep = [object() for _ in range(100_000)]

    def run():
        print("ready", flush=True)
        while True:
            gc.collect(1)  # nearly all the time in collections and their callback

    serve(run)
    print("clean exit", flush=True)
    """
)


@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_is_not_lost_inside_the_collector_callback(attempt):
    """A KeyboardInterrupt raised inside a gc callback is printed and dropped
    by Python; the server must still stop on SIGTERM."""
    assert_stops_on_sigterm(BUSY_COLLECTING, timeout=20)


NOTED_WHILE_ASLEEP = textwrap.dedent(
    """
    import select, signal, threading
    from common.net import serve

    def other_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        threading.Event().wait()

    def run():
        # The race, made certain: SIGTERM is noted (by the one thread that
        # takes it) while the main thread sleeps with no timeout, as when it
        # arrives just before the event loop enters poll().
        threading.Thread(target=other_thread, daemon=True).start()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        print("ready", flush=True)
        select.poll().poll()

    serve(run)
    print("clean exit", flush=True)
    """
)


def test_sigterm_noted_just_before_the_loop_sleeps_still_stops_it():
    """A signal's Python handler runs only when the main thread runs Python:
    one noted just before poll() sleeps with no timeout waited for ever (a
    test saw chapter 16 ignore SIGTERM once in 450 stops). serve()'s tick
    wakes the sleep."""
    assert_stops_on_sigterm(NOTED_WHILE_ASLEEP, timeout=5)
