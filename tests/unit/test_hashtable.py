"""common/hashtable.py (chapter 08): against a dict model, and its progressive resizing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from common.hashtable import MAX_LOAD_FACTOR, REHASH_WORK, HMap, HNode
from tests.unit.scan_checks import keys_returned_while_growing, keys_seen_amid_changes, whole_scan

pytestmark = pytest.mark.since(8)


class Item(HNode):
    __slots__ = ("value",)

    def __init__(self, key: Any, value: Any = None) -> None:
        super().__init__(key)
        self.value = value


class SelfSlottedItem:
    """A node that declares the three slots itself, as chapter 11's sorted-set node must."""

    __slots__ = ("key", "hnext", "value")

    def __init__(self, key: Any, value: Any = None) -> None:
        self.key, self.hnext, self.value = key, None, value


class Colliding:
    """A key whose hash is always the same: all such keys share one chain."""

    __slots__ = ("name",)

    def __init__(self, name: int) -> None:
        self.name = name

    def __hash__(self) -> int:
        return 42

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Colliding) and other.name == self.name


def check_structure(hmap: HMap) -> None:
    """Every node sits in the bucket of its cached hash, the counts agree, and
    the older table is empty before the migration position."""
    tables = [(hmap._newer, hmap._newer_mask)]
    if hmap._older is not None:
        tables.append((hmap._older, hmap._older_mask))
        assert not any(hmap._older[: hmap._migrate_pos])
    counts = []
    for table, mask in tables:
        assert len(table) == mask + 1 and len(table) & mask == 0  # a power of two
        count = 0
        for index, node in enumerate(table):
            while node is not None:
                assert hash(node.key) & mask == index
                count += 1
                node = node.hnext
        counts.append(count)
    assert sum(counts) == len(hmap)
    if hmap._older is not None:
        assert counts[1] == hmap._older_size > 0


def finish_resizing(hmap: HMap) -> None:
    while hmap.is_resizing():
        hmap.lookup(None)


def fill_until_resizing(hmap: HMap, make_key=lambda number: number) -> None:
    while not hmap.is_resizing():
        hmap.insert(Item(make_key(len(hmap))))


def map_mid_resize(make_key=lambda number: number, capacity: int = 256) -> HMap:
    """A map of keys make_key(0), make_key(1), ... whose newest insert started
    a resize from a table of at least `capacity` buckets."""
    hmap = HMap()
    while hmap.capacity < capacity:  # grow through the smaller sizes first
        fill_until_resizing(hmap, make_key)
        finish_resizing(hmap)
    fill_until_resizing(hmap, make_key)
    return hmap


def migration_step(hmap: HMap) -> tuple[int, int]:
    """Do one operation; return the older table's buckets it passed and nodes it moved."""
    position, older_size = hmap._migrate_pos, hmap._older_size
    hmap.lookup(None)
    return hmap._migrate_pos - position, older_size - hmap._older_size


class HMapMachine(RuleBasedStateMachine):
    """Inserts, lookups and pops against a dict; the bulk inserts make it resize."""

    # Negative numbers give natural collisions: hash(-1) == hash(-2).
    keys = st.one_of(st.integers(-3, 300), st.binary(max_size=2))

    def __init__(self) -> None:
        super().__init__()
        self.map: HMap[Item] = HMap()
        self.model: dict[Any, Any] = {}

    @rule(key=keys, value=st.integers())
    def upsert(self, key, value):
        node = self.map.lookup(key)
        if node is None:
            self.map.insert(Item(key, value))
        else:
            node.value = value
        self.model[key] = value

    @rule(first=st.integers(0, 300), count=st.integers(1, 300))
    def insert_many(self, first, count):
        for key in range(1000 + first, 1000 + first + count):
            if key not in self.model:
                self.map.insert(Item(key, key))
                self.model[key] = key

    @rule(key=keys)
    def pop(self, key):
        node = self.map.pop(key)
        assert (node is None) == (key not in self.model)
        if node is not None:
            assert node.key == key and node.value == self.model.pop(key)
            assert node.hnext is None

    @rule(key=keys)
    def lookup(self, key):
        node = self.map.lookup(key)
        assert (node.value if node else None) == self.model.get(key)

    @rule()
    def clear(self):
        self.map.clear()
        self.model.clear()

    @invariant()
    def same_contents(self):
        check_structure(self.map)
        assert len(self.map) == len(self.model)
        nodes = list(self.map)
        assert len(nodes) == len(self.model)
        assert {node.key: node.value for node in nodes} == self.model


TestHMapAgainstDict = HMapMachine.TestCase
TestHMapAgainstDict.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


def test_a_resize_is_progressive():
    hmap = map_mid_resize()
    # The insert that started the resize moved at most REHASH_WORK nodes: both tables hold nodes.
    assert len(hmap) - REHASH_WORK <= hmap._older_size < len(hmap)
    assert hmap.capacity == 2 * len(hmap._older)
    passed, moved = migration_step(hmap)
    assert moved > 0 and passed + moved <= REHASH_WORK
    check_structure(hmap)


def test_passing_empty_buckets_counts_as_migration_work():
    """Keys 0, 256, 512, ... all fall in one bucket in 256 of the older
    table, so migrating is mostly passing empty buckets; an operation still
    does no more than REHASH_WORK steps."""
    hmap = map_mid_resize(make_key=lambda number: 256 * number, capacity=1024)
    steps = []
    while hmap.is_resizing():
        steps.append(migration_step(hmap))
    assert all(passed + moved <= REHASH_WORK for passed, moved in steps)
    assert max(passed for passed, _ in steps) == REHASH_WORK
    check_structure(hmap)


@pytest.mark.parametrize("steps", [0, 1, 5])
def test_iteration_mid_resize_yields_every_node_once(steps):
    hmap = map_mid_resize(capacity=4 * REHASH_WORK * 8 // MAX_LOAD_FACTOR)  # more nodes than `steps` migrate
    for _ in range(steps):
        hmap.lookup(None)
    assert hmap.is_resizing()
    nodes = list(hmap)
    assert len({id(node) for node in nodes}) == len(nodes) == len(hmap)
    assert sorted(node.key for node in nodes) == list(range(len(hmap)))


def test_lookup_and_pop_find_keys_in_either_table_mid_resize():
    hmap = map_mid_resize()
    count = len(hmap)
    assert all(hmap.lookup(key).key == key for key in range(count))
    hmap = map_mid_resize()
    popped = [hmap.pop(key) for key in range(count)]
    assert [node.key for node in popped] == list(range(count))
    assert len(hmap) == 0 and list(hmap) == [] and not hmap.is_resizing()


def test_the_load_factor_bounds_the_chains():
    hmap = HMap()
    for key in range(10_000):
        hmap.insert(Item(key))
    finish_resizing(hmap)
    assert len(hmap) <= MAX_LOAD_FACTOR * hmap.capacity
    check_structure(hmap)


@pytest.mark.parametrize("node_class", [Item, SelfSlottedItem])
def test_colliding_keys_share_one_chain_through_resizes(node_class):
    hmap = HMap()
    names = range(200)  # enough to resize a few times, all in one bucket
    for name in names:
        hmap.insert(node_class(Colliding(name), name))
        assert hmap.lookup(Colliding(name)).value == name
    assert hmap.capacity > 4
    assert all(hmap.lookup(Colliding(name)).value == name for name in names)
    for name in (0, 100, 199):  # wherever they are in the chain
        assert hmap.pop(Colliding(name)).value == name
        assert hmap.lookup(Colliding(name)) is None
        assert hmap.pop(Colliding(name)) is None
    assert len(hmap) == len(names) - 3
    check_structure(hmap)


def test_clear_mid_resize():
    hmap = map_mid_resize()
    hmap.clear()
    assert len(hmap) == 0 and list(hmap) == [] and hmap.lookup(1) is None
    assert not hmap.is_resizing()
    fill_until_resizing(hmap, make_key=str)
    check_structure(hmap)


# --- SCAN (chapter 17) ------------------------------------------------------------------

scan_operations = st.lists(
    st.tuples(st.sampled_from(["insert", "pop", "scan", "scan"]), st.integers(0, 3000)), max_size=600
)


@pytest.mark.since(17)
@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 3000), max_size=400), scan_operations)
def test_scan_returns_every_key_present_throughout_despite_resizes(initial, operations):
    """Redis's guarantee: a key in the map from the scan's first call to its
    last is returned at least once, while keys come and go and the table
    doubles (progressively) between calls."""
    hmap: HMap = HMap()
    for key in initial:
        hmap.insert(Item(key))
    seen, popped = keys_seen_amid_changes(lambda key: add(hmap, key), lambda key: hmap.pop(key) is not None,
                                          lambda cursor: scan_keys(hmap, cursor), operations, 4 * hmap.capacity)  # fmt: skip
    assert initial - popped <= seen


def add(hmap: HMap, key: int) -> None:
    if hmap.lookup(key) is None:
        hmap.insert(Item(key))


def scan_keys(hmap: HMap, cursor: int) -> tuple[list[int], int]:
    nodes, cursor = hmap.scan(cursor)
    return [node.key for node in nodes], cursor


@pytest.mark.since(17)
def test_scan_of_a_map_left_alone_mid_resize_returns_each_key_once():
    hmap = map_mid_resize()
    assert hmap.is_resizing()  # both tables are walked
    keys = whole_scan(lambda cursor: scan_keys(hmap, cursor))
    assert sorted(keys) == list(range(len(hmap)))
    assert HMap().scan(0) == ([], 0)


@pytest.mark.since(17)
@settings(max_examples=100, deadline=None)
@given(st.sets(st.integers(0, 10_000), max_size=300), st.lists(st.integers(0, 10_000), max_size=1500), st.integers(1, 8))
def test_scan_while_the_table_grows_returns_no_key_twice(initial, inserts, inserts_per_call):
    """Why the cursor counts in reverse binary: when the table doubles, the
    buckets already visited split into buckets already visited, so nothing
    comes twice. (Counting forwards would visit the split halves again.)"""
    hmap: HMap = HMap()
    for key in initial:
        hmap.insert(Item(key))
    returned = keys_returned_while_growing(lambda key: add(hmap, key), lambda cursor: scan_keys(hmap, cursor),
                                           inserts, inserts_per_call)  # fmt: skip
    assert len(returned) == len(set(returned))
    assert initial <= set(returned)


def test_fair_random_node_reaches_every_node_even_in_a_long_chain():
    """SRANDMEMBER's draws (chapter 20): each node about as often as any
    other, and none out of reach, even past FAIR_CHAIN nodes in one bucket."""
    import random as random_module
    from collections import Counter

    class SameHash(bytes):
        def __hash__(self) -> int:
            return 7  # every key in one chain

    chained = HMap()
    for number in range(20):
        chained.insert(HNode(SameHash(b"k%d" % number)))
    assert {chained.fair_random_node(random_module).key for _ in range(5000)} == {node.key for node in chained}
    spread = HMap()
    for number in range(50):
        spread.insert(HNode(b"m%d" % number))
    counts = Counter(spread.fair_random_node(random_module).key for _ in range(50_000))
    assert len(counts) == 50 and min(counts.values()) > 700 and max(counts.values()) < 1300
