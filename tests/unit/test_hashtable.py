"""common/hashtable.py against a dict model, including mid-resize."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from common.hashtable import MAX_LOAD_FACTOR, REHASH_WORK, HMap, HNode

pytestmark = pytest.mark.since(8)


class Item(HNode):
    __slots__ = ("value",)

    def __init__(self, key, value=None):
        super().__init__(key)
        self.value = value


class Colliding:
    """A key whose hash is always the same: every one lands in one chain."""

    def __init__(self, name):
        self.name = name

    def __hash__(self):
        return 42

    def __eq__(self, other):
        return isinstance(other, Colliding) and other.name == self.name


class HMapMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.map = HMap()
        self.model = {}

    keys = st.integers(0, 300)

    @rule(key=keys, value=st.integers())
    def upsert(self, key, value):
        node = self.map.lookup(key)
        if node is None:
            self.map.insert(Item(key, value))
        else:
            node.value = value
        self.model[key] = value

    @rule(first=keys, count=st.integers(1, 200))
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
            assert node.value == self.model.pop(key)
            assert node.hnext is None

    @rule(key=keys)
    def lookup(self, key):
        node = self.map.lookup(key)
        assert (node.value if node else None) == self.model.get(key)

    @invariant()
    def same_contents(self):
        assert len(self.map) == len(self.model)
        nodes = list(self.map)
        assert len(nodes) == len(self.model)
        assert {node.key: node.value for node in nodes} == self.model


TestHMapAgainstDict = HMapMachine.TestCase
TestHMapAgainstDict.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def map_mid_resize() -> HMap:
    """A map of a few thousand keys (0, 1, 2, ...) that has just started to grow."""
    hmap = HMap()
    for _ in range(6):  # grow through a few sizes so the tables are big
        fill_until_resizing(hmap)
        while hmap.is_resizing():
            hmap.lookup(-1)
    fill_until_resizing(hmap)
    return hmap


def fill_until_resizing(hmap: HMap) -> None:
    while not hmap.is_resizing():
        hmap.insert(Item(len(hmap)))


def test_resizing_is_progressive():
    hmap = map_mid_resize()
    older, newer = hmap._older, hmap._newer
    assert older.size > REHASH_WORK  # the old table still holds its nodes...
    before = older.size
    hmap.lookup(-1)
    assert before - older.size == REHASH_WORK  # ...and each operation moves a bounded number
    assert newer.size + older.size == len(hmap)
    assert len(newer.slots) == 2 * len(older.slots)


def test_everything_found_and_iterated_once_mid_resize():
    hmap = map_mid_resize()
    count = len(hmap)
    for _ in range(3):  # part-way through the migration
        hmap.lookup(-1)
    assert hmap.is_resizing()
    assert sorted(node.key for node in hmap) == list(range(count))
    assert all(hmap.lookup(key).key == key for key in range(count))
    assert hmap.pop(0).key == 0 and hmap.lookup(0) is None


def test_load_factor_bounds_chains():
    hmap = HMap()
    for key in range(10_000):
        hmap.insert(Item(key))
    while hmap.is_resizing():
        hmap.lookup(-1)
    assert len(hmap) <= MAX_LOAD_FACTOR * len(hmap._newer.slots)


def test_colliding_keys():
    hmap = HMap()
    for name in range(50):
        hmap.insert(Item(Colliding(name), name))
    assert all(hmap.lookup(Colliding(name)).value == name for name in range(50))
    assert hmap.pop(Colliding(25)).value == 25
    assert hmap.lookup(Colliding(25)) is None
    assert len(hmap) == 49


def test_clear():
    hmap = HMap()
    fill_until_resizing(hmap)
    hmap.clear()
    assert len(hmap) == 0 and list(hmap) == [] and hmap.lookup(1) is None
