"""Why subtree counts: the cost of ZRANGE ... LIMIT offset count as the
offset grows, with our AVL tree against list-based approaches.

    .venv/bin/python chapters/11_sorted_set/offset_bench.py [--members 1000000]

A sorted set of --members members is built once. Then, for growing
offsets, the time to find the 10 members after skipping `offset` members
from the lowest score is measured three ways:

- AVL tree with subtree counts (this chapter): seek, then avl_offset
  jumps over the offset in O(log n): the time stays flat;
- walking node by node, as a linked list (or a tree without counts) must:
  O(offset);
- a sorted Python list with bisect: index arithmetic, O(log n) too; but
  keeping it sorted costs O(n) per insert (a memmove of the whole tail),
  which the second table shows.

Times are medians of repeated runs, in microseconds, from one run on
whatever machine you have: compare within a table.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.avl import avl_next  # noqa: E402
from common.zset import ZSet  # noqa: E402
from tools.report import comparison_table, wide_console  # noqa: E402

PAGE = 10  # the "count" of LIMIT offset count
REPEATS = 21


def median_microseconds(action: Callable[[], object], repeats: int = REPEATS) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def page_by_counts(zset: ZSet, offset: int) -> list[bytes]:
    """What ZRANGE key -inf +inf BYSCORE LIMIT offset 10 does in server.py."""
    first = zset.first_in_range(float("-inf"), False)
    return [node.key for node in ZSet.walk(zset.at(zset.rank(first) + offset), PAGE)]


def page_by_walking(zset: ZSet, offset: int) -> list[bytes]:
    """The same page without subtree counts: step over `offset` nodes one by one."""
    node = zset.first_in_range(float("-inf"), False)
    for _ in range(offset):
        node = avl_next(node)
    return [node.key for node in ZSet.walk(node, PAGE)]


def page_from_sorted_list(pairs: list[tuple[float, bytes]], offset: int) -> list[bytes]:
    start = bisect.bisect_left(pairs, (float("-inf"), b""))
    return [member for _, member in pairs[start + offset : start + offset + PAGE]]


def insert_and_remove_in_zset(zset: ZSet, pair: tuple[float, bytes]) -> None:
    score, member = pair
    zset.delete(zset.add(member, score))


def insert_and_remove_in_list(pairs: list[tuple[float, bytes]], pair: tuple[float, bytes]) -> None:
    """Both move every later element by one place: O(n)."""
    index = bisect.bisect(pairs, pair)
    pairs.insert(index, pair)
    del pairs[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    options = parser.parse_args()
    n = options.members
    console = wide_console()
    console.print(f"building a sorted set and a sorted list of {n:,} members ...")
    zset = ZSet()
    pairs = []
    for i in range(n):
        member = b"member:%d" % i
        zset.add(member, float(i))
        pairs.append((float(i), member))

    offsets = [offset for offset in (0, 10, 1_000, 100_000, n // 2, n - PAGE) if offset <= n - PAGE]
    results: dict[str, dict[str, float]] = {"AVL tree with counts": {}, "walking node by node": {}, "sorted list": {}}
    for offset in offsets:
        expected = page_from_sorted_list(pairs, offset)
        assert page_by_counts(zset, offset) == expected == page_by_walking(zset, offset)
        key = str(offset)
        results["AVL tree with counts"][key] = median_microseconds(lambda: page_by_counts(zset, offset))
        repeats = REPEATS if offset <= 100_000 else 3  # the slow one is slow
        results["walking node by node"][key] = median_microseconds(lambda: page_by_walking(zset, offset), repeats)
        results["sorted list"][key] = median_microseconds(lambda: page_from_sorted_list(pairs, offset))
    rows = [(f"offset {int(offset):,}", offset, "{:,.1f} µs") for offset in map(str, offsets)]
    console.print(comparison_table(f"LIMIT offset {PAGE} on {n:,} members", results, rows))

    newcomer = (float(n // 2) + 0.5, b"new")  # a score between two existing ones
    inserts = {
        "AVL tree with counts": {"insert": median_microseconds(lambda: insert_and_remove_in_zset(zset, newcomer))},
        "sorted list": {"insert": median_microseconds(lambda: insert_and_remove_in_list(pairs, newcomer))},
    }
    console.print(comparison_table(f"insert (and remove) one member among {n:,}", inserts,
                                   [("insert + remove", "insert", "{:,.1f} µs")]))  # fmt: skip


if __name__ == "__main__":
    main()
