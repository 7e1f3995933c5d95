"""Chapter 23's compact keyspace: against a dict model, its progressive
resize, SCAN's guarantee, and the handles chapter 14 sees."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from common.chapters import load_chapter_module
from tests.unit.scan_checks import keys_returned_while_growing, keys_seen_amid_changes, whole_scan

pytestmark = pytest.mark.since(23)

compact = load_chapter_module(23, "compact_keyspace")
CompactKeyspace, GONE = compact.CompactKeyspace, compact.GONE


def key(number: int) -> bytes:
    return b"key:%d" % number


@contextmanager
def segment_bits(bits: int) -> Iterator[None]:
    """Tables made meanwhile have 2**bits segments (one: every key in one table)."""
    saved = compact.SEGMENT_BITS, compact.SEGMENTS
    compact.SEGMENT_BITS, compact.SEGMENTS = bits, 1 << bits
    try:
        yield
    finally:
        compact.SEGMENT_BITS, compact.SEGMENTS = saved


def check_structure(table: CompactKeyspace) -> None:
    """In every segment: every key is where a probe from its home finds it
    (no empty slot between), the newer table has no GONE mark, the counts
    agree, and the older table holds nothing before the migration position."""
    for segment in table.segments:
        assert GONE not in segment.keys
        tables = [(segment.keys, segment.mask)]
        if segment.older_keys is not None:
            tables.append((segment.older_keys, segment.older_mask))
            assert all(slot is None or slot is GONE for slot in segment.older_keys[: segment.migrate_pos])
            assert segment.older_left == sum(slot is not None and slot is not GONE for slot in segment.older_keys)
        count = 0
        for keys, mask in tables:
            assert len(keys) == mask + 1 and len(keys) & mask == 0
            for index, slot in enumerate(keys):
                if slot is None or slot is GONE:
                    continue
                count += 1
                probe = hash(slot) & mask
                while probe != index:
                    assert keys[probe] is not None, "a key beyond an empty slot of its run"
                    probe = (probe + 1) & mask
        assert count == segment.size


class CompactMachine(RuleBasedStateMachine):
    """Random stores, lookups and pops (the test makes each migration take
    several operations)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = CompactKeyspace()
        self.model: dict[bytes, int] = {}

    @rule(number=st.integers(0, 120), value=st.integers())
    def store(self, number: int, value: int) -> None:
        assert self.table.store(key(number), value) == self.model.get(key(number))
        self.model[key(number)] = value

    @rule(number=st.integers(0, 120))
    def pop(self, number: int) -> None:
        handle = self.table.pop(key(number))
        expected = self.model.pop(key(number), None)
        assert (handle is None) == (expected is None)
        if handle is not None:
            assert (handle.key, handle.value) == (key(number), expected)

    @rule(number=st.integers(0, 120))
    def lookup(self, number: int) -> None:
        handle = self.table.lookup(key(number))
        assert (None if handle is None else handle.value) == self.model.get(key(number))
        assert self.table.value_of(key(number)) == self.model.get(key(number))

    @invariant()
    def agrees(self) -> None:
        check_structure(self.table)
        assert {handle.key: handle.value for handle in self.table} == self.model


@pytest.mark.parametrize("bits", [0, compact.SEGMENT_BITS])
def test_against_a_dict(monkeypatch, bits):
    monkeypatch.setattr(compact, "MIGRATE_WORK", 2)
    run = CompactMachine.TestCase
    run.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)
    with segment_bits(bits):
        run().runTest()


def fill_until_migrating(count: int) -> CompactKeyspace:
    """One segment, with `count` keys or more, in the middle of a migration."""
    with segment_bits(0):
        table = CompactKeyspace()
        number = 0
        while table.segments[0].older_keys is None or len(table) < count:
            table.store(key(number), number)
            number += 1
    return table


def test_a_doubling_moves_the_keys_a_few_slots_per_operation(monkeypatch):
    monkeypatch.setattr(compact, "MIGRATE_WORK", 2)
    with segment_bits(0):
        table = CompactKeyspace()
        segment = table.segments[0]
        number = 0
        while segment.mask < 31:
            table.store(key(number), number)
            number += 1
        while segment.older_keys is not None:  # the doubling to 32 slots ends
            table.value_of(key(0))
        while segment.older_keys is None:
            table.store(key(number), number)
            number += 1
        assert number == 17 and segment.mask == 63 and segment.older_left >= 15  # past half of 32 slots
        for _ in range(4):
            left = segment.older_left
            table.value_of(key(0))  # any operation moves a few
            assert left - segment.older_left <= 2  # MIGRATE_WORK slots of the older table
            check_structure(table)
        while segment.older_keys is not None:
            table.value_of(key(0))
        assert sorted(handle.value for handle in table) == list(range(17))
        check_structure(table)


def test_keys_are_found_and_popped_in_either_table_mid_migration():
    table = fill_until_migrating(300)
    segment = table.segments[0]
    assert segment.older_left > 0 and len(table) - segment.older_left > 0  # in both tables
    count = len(table)
    assert all(table.value_of(key(number)) == number for number in range(count))
    for number in range(0, count, 2):
        assert table.pop(key(number)).value == number
    check_structure(table)
    assert sorted(handle.value for handle in table) == list(range(1, count, 2))


def test_a_handle_writes_its_value_through_to_the_table():
    table = CompactKeyspace()
    table.store(b"a", b"1")
    handle = table.lookup(b"a")
    handle.value = b"2"
    assert table.value_of(b"a") == b"2" and handle.value == b"2"
    popped = table.pop(b"a")
    assert popped.value == b"2" and table.lookup(b"a") is None and len(table) == 0


def test_random_node_draws_every_key_alike():
    table = CompactKeyspace()
    for number in range(40):
        table.store(key(number), number)
    rng = random.Random(7)
    draws = [table.random_node(rng).value for _ in range(8000)]
    counts = [draws.count(number) for number in range(40)]
    assert min(counts) > 130 and max(counts) < 270  # 200 expected each
    assert CompactKeyspace().random_node(rng) is None


scan_operations = st.lists(st.tuples(st.sampled_from(["insert", "pop", "scan"]), st.integers(0, 3000).map(key)), max_size=300)


def scan_keys(table: CompactKeyspace, cursor: int) -> tuple[list[bytes], int]:
    handles, cursor = table.scan(cursor)
    return [handle.key for handle in handles], cursor


@pytest.mark.parametrize("bits", [0, compact.SEGMENT_BITS])
@settings(max_examples=150, deadline=None)
@given(initial=st.sets(st.integers(0, 3000), max_size=400), operations=scan_operations)
def test_scan_returns_every_key_present_throughout_despite_resizes(bits, initial, operations):
    """Redis's guarantee, as for chapter 08's table: a key present from a
    scan's first call to its last is returned at least once."""
    with segment_bits(bits):
        table = CompactKeyspace()
    for number in initial:
        table.store(key(number), number)
    slots = 4 * sum(segment.mask + 1 for segment in table.segments)
    seen, popped = keys_seen_amid_changes(lambda key: table.store(key, 0), lambda key: table.pop(key) is not None,
                                          lambda cursor: scan_keys(table, cursor), operations, slots)  # fmt: skip
    assert {key(number) for number in initial} - popped <= seen


@pytest.mark.parametrize("bits", [0, compact.SEGMENT_BITS])
@settings(max_examples=80, deadline=None)
@given(initial=st.sets(st.integers(0, 10_000), max_size=300), inserts=st.lists(st.integers(0, 10_000), max_size=1500),
       inserts_per_call=st.integers(1, 8))  # fmt: skip
def test_scan_while_the_table_grows_returns_no_key_twice(bits, initial, inserts, inserts_per_call):
    with segment_bits(bits):
        table = CompactKeyspace()
    for number in initial:
        table.store(key(number), number)
    returned = keys_returned_while_growing(lambda key: table.store(key, 0), lambda cursor: scan_keys(table, cursor),
                                           [key(number) for number in inserts], inserts_per_call)  # fmt: skip
    assert len(returned) == len(set(returned))
    assert {key(number) for number in initial} <= set(returned)


def test_scan_of_a_table_left_alone_mid_migration_returns_each_key_once():
    table = fill_until_migrating(300)
    keys = whole_scan(lambda cursor: scan_keys(table, cursor))
    assert sorted(keys) == sorted(handle.key for handle in table) and len(keys) == len(table)
    assert CompactKeyspace().scan(0) == ([], 0)
