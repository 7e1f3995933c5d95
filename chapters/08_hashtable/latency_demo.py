"""The slowest single insert while a table grows to millions of keys:
Python's dict, which resizes all at once, against common/hashtable.py,
which resizes progressively (chapter 08, Hashtables).

    .venv/bin/python chapters/08_hashtable/latency_demo.py [--keys 2000000]

Every insert is timed on its own. A dict's total is far lower (it is C;
our table is Python), but look at the slowest insert: when a dict grows it
rehashes every key inside one insert, which in a server means every client
waits; our table spreads the same work over the following operations.

Two other stalls are measured rather than hidden:

* Python's cyclic garbage collector. Its full collections walk every live
  object that can hold references, and each of our entries is one, so they
  stall for a time proportional to the keyspace, like a dict's resize. The
  first two columns switch it off, so that they compare hashing alone; the
  third turns it back on to show what a server holding millions of keys
  has to reckon with (gc.freeze() after loading, or fewer full passes).
* Allocating a new table. Starting a resize allocates the newer table in
  one go, and `[None] * slots` is O(slots): C's calloc hands out lazily
  zeroed pages, Python must write every slot. The second table below puts
  the inserts that started our resizes next to that allocation alone.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rich.table import Table  # noqa: E402

from common.hashtable import MAX_LOAD_FACTOR, HMap, HNode  # noqa: E402
from tools.report import comparison_table, wide_console  # noqa: E402

RESIZES_SHOWN = 4


class Entry(HNode):
    __slots__ = ("value",)

    def __init__(self, key: bytes, value: bytes) -> None:
        super().__init__(key)
        self.value = value


class Resize(NamedTuple):
    """An insert that started a resize of our table, and the size of the table it allocated."""

    insert_number: int
    slots: int


def time_dict_inserts(keys: list[bytes]) -> tuple[array, list[Resize]]:
    """Nanoseconds per insert into a dict (which does not say when it resizes)."""
    table: dict[bytes, bytes] = {}
    latencies = array("q", bytes(8 * len(keys)))
    clock = time.perf_counter_ns
    for i, key in enumerate(keys):
        started = clock()
        table[key] = key
        latencies[i] = clock() - started
    return latencies, []


def time_hmap_inserts(keys: list[bytes]) -> tuple[array, list[Resize]]:
    """Nanoseconds per insert as the chapter 08 server does it (look up, then
    insert an entry), and the inserts that started a resize."""
    table: HMap[Entry] = HMap()
    latencies = array("q", bytes(8 * len(keys)))
    resizes: list[Resize] = []
    clock = time.perf_counter_ns
    capacity = table.capacity
    for i, key in enumerate(keys):
        started = clock()
        if table.lookup(key) is None:
            table.insert(Entry(key, key))
        latencies[i] = clock() - started
        if table.capacity != capacity:  # outside the timed span
            capacity = table.capacity
            resizes.append(Resize(i + 1, capacity))
    return latencies, resizes


class Collections:
    """Times the garbage collector's collections, as a gc.callbacks entry."""

    def __init__(self) -> None:
        self.durations_ns: list[list[int]] = [[], [], []]  # per generation
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.durations_ns[info["generation"]].append(time.perf_counter_ns() - self._started)

    def summary(self) -> str:
        young = self.durations_ns[0] + self.durations_ns[1]
        full = self.durations_ns[2]
        return (
            f"{len(young):,} young-generation collections (the longest {max(young, default=0) / 1e6:.2f} ms) "
            f"and {len(full)} full ones (the longest {max(full, default=0) / 1e6:.2f} ms)"
        )


@contextmanager
def collector(enabled: bool) -> Iterator[Collections]:
    """Run the block with the cyclic GC on or off, starting from a clean
    heap, and time the collections that run inside it."""
    was_enabled = gc.isenabled()
    gc.collect()  # the previous run's garbage must not be collected during this one
    collections = Collections()
    set_collector(enabled)
    gc.callbacks.append(collections)
    try:
        yield collections
    finally:
        gc.callbacks.remove(collections)
        set_collector(was_enabled)


def set_collector(enabled: bool) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()


def clock_overhead_ns() -> int:
    """The median cost of an empty timed span: it is in every figure."""
    clock = time.perf_counter_ns
    spans = sorted(-clock() + clock() for _ in range(100_000))
    return spans[len(spans) // 2]


def allocation_ns(slots: int) -> int:
    """How long allocating a table of `slots` chain heads takes, on its own."""
    started = time.perf_counter_ns()
    table = [None] * slots
    elapsed = time.perf_counter_ns() - started
    del table
    return elapsed


def summarize(latencies: array) -> dict[str, float]:
    ordered = sorted(latencies)
    total = sum(ordered)
    slowest_at = max(range(len(latencies)), key=latencies.__getitem__)
    return {
        "total": total / 1e9,
        "mean": total / len(ordered) / 1e3,
        "p99": ordered[int(len(ordered) * 0.99)] / 1e3,
        "p99.9": ordered[int(len(ordered) * 0.999)] / 1e3,
        "max": ordered[-1] / 1e6,
        "slowest_at": slowest_at + 1,
        "over_1ms": sum(1 for latency in ordered if latency > 1_000_000),
    }


def resize_table(resizes: list[Resize], latencies: array) -> Table:
    table = Table(title=f"the inserts that started our table's last {RESIZES_SHOWN} resizes (gc off)")
    for heading in ("insert number", "new table slots", "that insert took", "[None] * slots, timed alone"):
        table.add_column(heading, justify="right")
    for resize in resizes[-RESIZES_SHOWN:]:
        table.add_row(
            f"{resize.insert_number:,}",
            f"{resize.slots:,}",
            f"{latencies[resize.insert_number - 1] / 1e3:,.1f} µs",
            f"{allocation_ns(resize.slots) / 1e3:,.1f} µs",
        )
    return table


GC_NOTE = (
    '"gc on" is the same run with Python\'s cyclic garbage collector working as usual: it made {collections}. '
    "A full collection walks every object that can hold references, and each entry is one, so it stalls "
    "in proportion to the keyspace, like a dict's resize. The other columns switch the collector off, to "
    "compare the hashing alone. A server holding millions of keys has to reckon with it too (gc.freeze() "
    "after loading, or fewer full collections).\n"
)

ALLOCATION_NOTE = (
    f"Our table doubles when it holds more than {MAX_LOAD_FACTOR} keys per slot, so a new table has one slot "
    f"per {max(MAX_LOAD_FACTOR // 2, 1)} key(s). Allocating it is the one step of a resize still done at once, and it is "
    "O(n): C's calloc can hand out lazily zeroed pages, but `[None] * slots` writes every slot. It is a C loop "
    "of one pointer per slot, so it costs far less than rehashing; the insert that starts a resize also moves "
    "the first nodes. Memory fresh from the OS adds a page fault per 4 KiB touched, so inside the run (the "
    "first allocation of its size) it may have cost more than when timed alone."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=2_000_000, help="keys to insert (default 2,000,000)")
    options = parser.parse_args()
    console = wide_console()
    keys = [b"key:%d" % i for i in range(options.keys)]
    runs: list[tuple[str, Callable[[list[bytes]], tuple[array, list[Resize]]], bool]] = [
        ("dict", time_dict_inserts, False),
        ("our hashtable", time_hmap_inserts, False),
        ("our hashtable, gc on", time_hmap_inserts, True),
    ]
    results: dict[str, dict[str, float]] = {}
    resize_report: Table | None = None
    gc_summary = ""
    for name, measure, gc_enabled in runs:
        console.print(f"inserting {options.keys:,} keys into {name} ...")
        with collector(gc_enabled) as collections:
            latencies, resizes = measure(keys)
        results[name] = summarize(latencies)
        if gc_enabled:
            gc_summary = collections.summary()
        elif resizes:
            resize_report = resize_table(resizes, latencies)

    rows = [
        ("total (sum of inserts)", "total", "{:.2f} s"),
        ("mean insert", "mean", "{:.2f} µs"),
        ("p99", "p99", "{:.2f} µs"),
        ("p99.9", "p99.9", "{:.2f} µs"),
        ("slowest insert", "max", "{:.2f} ms"),
        ("... at insert number", "slowest_at", "{:,}"),
        ("inserts over 1 ms", "over_1ms", "{:,}"),
    ]
    console.print()
    console.print(comparison_table(f"one insert at a time, growing to {options.keys:,} keys", results, rows))
    console.print(f"Every figure includes about {clock_overhead_ns()} ns of timer overhead.\n")
    console.print(GC_NOTE.format(collections=gc_summary))
    if resize_report is not None:
        console.print(resize_report)
        console.print(ALLOCATION_NOTE)


if __name__ == "__main__":
    main()
