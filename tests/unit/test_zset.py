"""common/zset.py against a sorted-list model of (score, member) pairs."""

import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.zset import ZSet
from tests.support import apply_zset_operations

pytestmark = pytest.mark.since(11)

members = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"])
scores = st.sampled_from([-1.5, 0.0, 1.0, 2.0, 2.5, float("inf"), float("-inf")])
operations = st.lists(st.tuples(st.sampled_from(["set", "delete"]), members, scores), max_size=60)


def apply(operations) -> tuple[ZSet, dict[bytes, float]]:
    zset, model = ZSet(), {}
    apply_zset_operations(zset, operations)
    for action, member, score in operations:
        if action == "set":
            model[member] = score
        else:
            model.pop(member, None)
    return zset, model


@settings(max_examples=200, deadline=None)
@given(operations=operations, low=scores, high=scores, exclusive=st.booleans())
def test_against_model(operations, low, high, exclusive):
    zset, model = apply(operations)
    ordered = sorted((score, member) for member, score in model.items())
    assert len(zset) == len(model)
    assert [(n.score, n.key) for n in ZSet.walk(zset.first(), len(zset))] == ordered
    assert [(n.score, n.key) for n in ZSet.walk(zset.last(), len(zset), -1)] == ordered[::-1]
    for rank, (score, member) in enumerate(ordered):
        node = zset.lookup(member)
        assert node.score == score and zset.rank(node) == rank
        assert zset.at(rank) is node
        assert zset.seek_ge(score, member) is node
    assert zset.at(len(ordered)) is None and zset.at(-1) is None
    first = zset.first_in_range(low, exclusive)
    expected_first = next((pair for pair in ordered if pair[0] > low or (pair[0] == low and not exclusive)), None)
    assert ((first.score, first.key) if first else None) == expected_first
    last = zset.last_in_range(high, exclusive)
    below = [pair for pair in ordered if pair[0] < high or (pair[0] == high and not exclusive)]
    assert ((last.score, last.key) if last else None) == (below[-1] if below else None)


@settings(max_examples=100, deadline=None)
@given(operations=operations, score=scores, member=members)
def test_seek_ge(operations, score, member):
    zset, model = apply(operations)
    ordered = sorted((s, m) for m, s in model.items())
    index = bisect.bisect_left(ordered, (score, member))
    found = zset.seek_ge(score, member)
    assert ((found.score, found.key) if found else None) == (ordered[index] if index < len(ordered) else None)


def test_dismantle_empties_the_set():
    zset, model = apply([("set", bytes([i]), float(i % 7)) for i in range(100)])
    assert len(list(zset.dismantle())) == 100
    assert len(zset) == 0 and zset.first() is None and zset.lookup(b"\x01") is None
    zset.add(b"again", 1.0)
    assert zset.rank(zset.lookup(b"again")) == 0
