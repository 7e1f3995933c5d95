"""common/zset_listpack.py: a small sorted set answers as chapter 11's ZSet
does, in both of its encodings and across the conversions, and costs less."""

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.zset import ZSet
from common.zset_listpack import ListpackZSet
from tests.support import apply_zset_operations

pytestmark = pytest.mark.since(17)

members = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"longer"])
scores = st.sampled_from([-1.5, 0.0, 1.0, 2.0, float("inf"), float("-inf")])
operations = st.lists(st.tuples(st.sampled_from(["set", "set", "delete"]), members, scores), max_size=40)
# One score for all: the lexicographic case, where where() applies.
same_score = st.lists(st.tuples(st.sampled_from(["set", "delete"]), members, st.just(1.0)), max_size=40)


class Small(ListpackZSet):
    """Thresholds small enough for a few operations to cross them."""

    __slots__ = ()
    max_entries = 3
    max_value = 4


def pairs(zset: ZSet, nodes) -> list[tuple[float, bytes]]:
    return [(node.score, node.key) for node in nodes]


@settings(max_examples=300, deadline=None)
@given(operations=st.one_of(operations, same_score), score=scores, member=members, offset=st.integers(-4, 4),
       exclusive=st.booleans())
def test_answers_as_chapter_11s_zset(operations, score, member, offset, exclusive):
    small, model = Small(), ZSet()
    apply_zset_operations(small, operations)
    apply_zset_operations(model, operations)
    assert len(small) == len(model)
    assert pairs(small, small.walk(small.first(), len(small))) == pairs(model, ZSet.walk(model.first(), len(model)))
    assert pairs(small, small.walk(small.last(), 3, -1)) == pairs(model, ZSet.walk(model.last(), 3, -1))
    assert sorted(pairs(small, small.nodes())) == sorted(pairs(model, model.nodes()))
    for rank in range(-1, len(model) + 1):
        a, b = small.at(rank), model.at(rank)
        assert (a and (a.score, a.key)) == (b and (b.score, b.key))
        if b is not None:
            assert small.rank(a) == rank
            c, d = small.offset(a, offset), model.offset(b, offset)
            assert (c and (c.score, c.key)) == (d and (d.score, d.key))
    checks = [
        (small.seek_ge(score, member), model.seek_ge(score, member)),
        (small.first_in_range(score, exclusive), model.first_in_range(score, exclusive)),
        (small.last_in_range(score, exclusive), model.last_in_range(score, exclusive)),
        (small.lookup(member), model.lookup(member)),
    ]
    if len({node.score for node in model.nodes()}) <= 1:  # where() is for lexicographic ranges: equal scores
        checks += [
            (small.where(lambda key: key >= member), model.where(lambda key: key >= member)),
            (small.where(lambda key: key <= member, last=True), model.where(lambda key: key <= member, last=True)),
        ]
    for found, expected in checks:
        assert (found and (found.score, found.key)) == (expected and (expected.score, expected.key))


@settings(max_examples=200, deadline=None)
@given(operations=operations)
def test_the_encoding_follows_redis_rules(operations):
    """Flat until a member passes max_value or the set passes max_entries;
    never flat again."""
    zset = Small()
    converted = False
    for action, member, score in operations:
        node = zset.lookup(member)
        if action == "set" and node is None:
            zset.add(member, score)
            converted = converted or len(zset) > Small.max_entries or len(member) > Small.max_value
        elif action == "set":
            zset.update(node, score)
        elif node is not None:
            zset.delete(node)
        assert zset.encoding == ("skiplist" if converted else "listpack")


def test_small_sets_cost_a_fraction_of_the_indexed_form():
    def allocated(make) -> int:
        tracemalloc.start()
        sets = []
        for i in range(2000):
            zset = make()
            for j in range(10):
                zset.add(b"member:%d" % j, float(i + j))
            sets.append(zset)
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return size

    flat, indexed = allocated(ListpackZSet), allocated(ZSet)
    assert flat < indexed / 2, (flat, indexed)  # measured: 0.43 (members and scores included)
