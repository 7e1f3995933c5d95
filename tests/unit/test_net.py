"""common/net.py: the garbage-collector policy every server runs with (freeze_survivors)."""

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
