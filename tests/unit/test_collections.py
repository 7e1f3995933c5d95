"""common/quicklist.py, common/hash.py, common/set.py: each answers as a
plain Python model does, in both of its encodings and across the
conversions, with node limits small enough for a few operations to cross them."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.hash import Hash
from common.quicklist import QuickList
from common.set import RedisSet, as_integer

pytestmark = pytest.mark.since(20)

items = st.sampled_from([b"a", b"b", b"", b"ccc", b"x" * 70, b"y" * 300])
indexes = st.integers(-12, 12)
list_operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), items, st.booleans()),
        st.tuples(st.just("pop"), st.booleans()),
        st.tuples(st.just("insert"), st.integers(0, 30), items),
        st.tuples(st.just("delete"), st.integers(0, 30)),
        st.tuples(st.just("replace"), indexes, items),
        st.tuples(st.just("remove"), items, st.integers(-3, 3)),
        st.tuples(st.just("trim"), indexes, indexes),
    ),
    max_size=60,
)


def remove_model(model: list[bytes], value: bytes, count: int) -> int:
    positions = [index for index, item in enumerate(model) if item == value]
    if count < 0:
        positions = positions[::-1]
    doomed = set(positions[: abs(count)] if count else positions)
    model[:] = [item for index, item in enumerate(model) if index not in doomed]
    return len(doomed)


def trim_model(model: list[bytes], start: int, stop: int) -> None:
    length = len(model)
    start = max(start + length if start < 0 else start, 0)
    stop = stop + length if stop < 0 else stop
    model[:] = model[start : stop + 1] if start <= stop else []


@pytest.mark.parametrize("fill", [-1, 1, 2, 3])
@settings(max_examples=150, deadline=None)
@given(operations=list_operations, start=indexes, stop=indexes)
def test_quicklist_answers_as_a_python_list(fill, operations, start, stop):
    QuickList.fill = fill
    try:
        quicklist, model = QuickList(), []
        for operation, *arguments in operations:
            if operation == "push":
                item, head = arguments
                quicklist.push(item, head)
                model.insert(0, item) if head else model.append(item)
            elif operation == "pop":
                (head,) = arguments
                assert quicklist.pop(head) == (model.pop(0 if head else -1) if model else None)
            elif operation == "insert":
                position = min(arguments[0], len(model))
                quicklist.insert_at(position, arguments[1])
                model.insert(position, arguments[1])
            elif operation == "delete" and model:
                position = arguments[0] % len(model)
                assert quicklist.delete_at(position) == model.pop(position)
            elif operation == "replace":
                index, item = arguments
                in_range = -len(model) <= index < len(model)
                assert quicklist.replace(index, item) == in_range
                if in_range:
                    model[index] = item
            elif operation == "remove":
                assert quicklist.remove(*arguments) == remove_model(model, *arguments)
            elif operation == "trim":
                quicklist.trim(*arguments)
                trim_model(model, *arguments)
            assert list(quicklist) == model and len(quicklist) == len(model)
            assert all(len(node) for node in quicklist.nodes)  # no empty node is left behind
        assert quicklist.range(start, stop) == trim_range(model, start, stop)
        for index in range(-len(model) - 1, len(model) + 1):
            assert quicklist.get(index) == (model[index] if -len(model) <= index < len(model) else None)
        for position in range(len(model)):
            assert list(quicklist.items(position)) == model[position:]
            assert list(quicklist.items(position, reverse=True)) == model[position::-1]
        assert list(quicklist.duplicate()) == model
        assert [item for node in quicklist.node_items() for item in node] == model
    finally:
        QuickList.fill = -2


def trim_range(model: list[bytes], start: int, stop: int) -> list[bytes]:
    copy = list(model)
    trim_model(copy, start, stop)
    return copy


def test_quicklist_nodes_respect_the_limits():
    """8 KB nodes by default; a count with fill > 0; a large element alone in its node."""
    quicklist = QuickList([b"x" * 100] * 1000)
    assert 9 <= len(quicklist.nodes) <= 14 and all(node.packed <= 8192 for node in quicklist.nodes)
    QuickList.fill = 5
    try:
        counted = QuickList([b"1"] * 23)
        assert [len(node) for node in counted.nodes] == [5, 5, 5, 5, 3]
    finally:
        QuickList.fill = -2
    big = QuickList([b"a", b"z" * 20000, b"b"])
    assert [len(node) for node in big.nodes] == [1, 1, 1]


def test_a_long_list_costs_little_more_than_its_bytes():
    """The point of packing: 100,000 elements of 10 bytes cost under 20
    bytes each, where a Python list of bytes objects costs over 50."""
    import tracemalloc

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    quicklist = QuickList()
    for index in range(100_000):
        quicklist.push(b"%010d" % index, head=False)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert used / 100_000 < 20, used


# Values that hold fields' bytes (a flat hash's search passes over them),
# and enough of them to make it walk the fields instead; empty fields and values.
fields = st.sampled_from([b"f1", b"f2", b"f3", b"", b"1", b"long-field-name-of-40-bytes-xxxxxxxxxxxx"])
values = st.sampled_from([b"", b"1", b"v", b"f1f2", b"f1" * 12])


class SmallHash(Hash):
    __slots__ = ()
    max_entries = 4
    max_value = 32


@settings(max_examples=300, deadline=None)
@given(operations=st.lists(st.tuples(st.sampled_from(["set", "set", "delete"]), fields, values), max_size=30))
def test_hash_answers_as_a_dict(operations):
    small, model = SmallHash(), {}
    converted = False
    for operation, field, value in operations:
        if operation == "set":
            assert small.set(field, value) == (field not in model)
            model[field] = value
        else:
            assert small.delete(field) == (model.pop(field, None) is not None)
        converted = converted or len(model) > 4 or operation == "set" and (len(field) > 32 or len(value) > 32)
        assert small.encoding == ("hashtable" if converted else "listpack")  # never back
        assert len(small) == len(model) and dict(small.items()) == model
        for name in [b"f1", b"f2", b"f3", b"", b"1", b"2", b"f", b"long-field-name-of-40-bytes-xxxxxxxxxxxx"]:
            assert small.get(name) == model.get(name)
    if small.encoding == "listpack":
        assert list(small.items()) == list(model.items())  # insertion order, as a listpack
    copy = small.duplicate()
    assert copy.encoding == small.encoding and dict(copy.items()) == model
    cursor, seen = 0, {}
    while True:
        found, cursor = small.scan(cursor)
        seen.update(found)
        if not cursor:
            break
    assert seen == model


class SmallSet(RedisSet):
    __slots__ = ()
    max_intset_entries = 4


members = st.sampled_from([b"1", b"2", b"-3", b"10", b"99", b"01", b"+1", b"-0", b"a", b"9223372036854775808"])


@settings(max_examples=300, deadline=None)
@given(operations=st.lists(st.tuples(st.sampled_from(["add", "add", "remove"]), members), max_size=30))
def test_set_answers_as_a_python_set(operations):
    small, model = SmallSet(), set()
    converted = False
    for operation, member in operations:
        if operation == "add":
            assert small.add(member) == (member not in model)
            model.add(member)
            converted = converted or as_integer(member) is None or len(model) > 4
        else:
            assert small.remove(member) == (member in model)
            model.discard(member)
        assert small.encoding == ("hashtable" if converted else "intset")
        assert len(small) == len(model) and set(small) == model
        assert all((name in small) == (name in model) for name in [b"1", b"01", b"a", b"-3"])
    if small.encoding == "intset":
        assert list(small) == sorted(model, key=int)  # numeric order, as Redis's intset
    copy = small.duplicate()
    assert copy.encoding == small.encoding and set(copy) == model
    if model:
        assert small.random_member(random.Random(1)) in model


def test_only_canonical_integers_join_an_intset():
    assert [as_integer(text) for text in [b"0", b"-1", b"123", b"9223372036854775807"]] == [0, -1, 123, 2**63 - 1]
    for text in [b"", b"-0", b"01", b"+1", b" 1", b"1.0", b"9223372036854775808", b"-9223372036854775809"]:
        assert as_integer(text) is None, text
