"""The slowest single insert while a table grows to millions of keys:
Python's dict, which resizes all at once, against common/hashtable.py,
which resizes progressively.

    python chapters/08_hashtable/latency_demo.py [--keys 2000000]

Every insert is timed on its own. A dict's total is far lower (it is C;
our table is Python), but look at the slowest insert: when a dict grows it
rehashes every key inside one insert, which in a server means every client
waits; our table spreads the same work over the following operations.

Python's cyclic garbage collector is switched off while measuring: its
full passes walk every live object, and would show up as stalls in both
columns that have nothing to do with hashing. (A real server has to
reckon with them too; chapter 11 onwards avoids creating garbage cycles.)
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from array import array
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from common.hashtable import HMap, HNode  # noqa: E402
from tools.report import comparison_table, wide_console  # noqa: E402


class Entry(HNode):
    __slots__ = ("value",)

    def __init__(self, key: bytes, value: bytes) -> None:
        super().__init__(key)
        self.value = value


def time_dict_inserts(keys: list[bytes]) -> array:
    table: dict[bytes, bytes] = {}
    latencies = array("q", bytes(8 * len(keys)))
    clock = time.perf_counter_ns
    for i, key in enumerate(keys):
        started = clock()
        table[key] = key
        latencies[i] = clock() - started
    return latencies


def time_hmap_inserts(keys: list[bytes]) -> array:
    """Inserts as the chapter 08 server does them: look up, then insert the entry."""
    table = HMap()
    latencies = array("q", bytes(8 * len(keys)))
    clock = time.perf_counter_ns
    for i, key in enumerate(keys):
        started = clock()
        if table.lookup(key) is None:
            table.insert(Entry(key, key))
        latencies[i] = clock() - started
    return latencies


def summarize(latencies: array) -> dict[str, float]:
    ordered = sorted(latencies)
    slowest_at = max(range(len(latencies)), key=latencies.__getitem__)
    return {
        "total": sum(ordered) / 1e9,
        "mean": sum(ordered) / len(ordered) / 1e3,
        "p99": ordered[int(len(ordered) * 0.99)] / 1e3,
        "p99.9": ordered[int(len(ordered) * 0.999)] / 1e3,
        "max": ordered[-1] / 1e6,
        "slowest_at": slowest_at,
        "over_1ms": sum(1 for latency in ordered if latency > 1_000_000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=2_000_000)
    options = parser.parse_args()
    keys = [b"key:%d" % i for i in range(options.keys)]
    console = wide_console()
    results = {}
    gc.disable()
    try:
        for name, measure in (("dict", time_dict_inserts), ("our hashtable", time_hmap_inserts)):
            console.print(f"inserting {options.keys:,} keys into {name} ...")
            results[name] = summarize(measure(keys))
            gc.collect()
    finally:
        gc.enable()
    title = f"one insert at a time, growing to {options.keys:,} keys"
    rows = [
        ("total time", "total", "{:.2f} s"),
        ("mean insert", "mean", "{:.2f} µs"),
        ("p99", "p99", "{:.2f} µs"),
        ("p99.9", "p99.9", "{:.2f} µs"),
        ("slowest insert", "max", "{:.2f} ms"),
        ("... at key number", "slowest_at", "{:,}"),
        ("inserts over 1 ms", "over_1ms", "{:,}"),
    ]
    console.print(comparison_table(title, results, rows))


if __name__ == "__main__":
    main()
