"""SCAN's guarantees, checked the same way on any table with a cursor: chapter
08's HMap (tests/unit/test_hashtable.py) and chapter 23's compact keyspace
(tests/unit/test_compact_keyspace.py). A table is given as three functions:
add a key (if absent), remove one (True if it was there), and one SCAN step
(the keys of a step and the next cursor)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Add = Callable[[Any], None]
Remove = Callable[[Any], bool]
Step = Callable[[int], tuple[list[Any], int]]


def keys_seen_amid_changes(add: Add, remove: Remove, step: Step, operations: list[tuple[str, Any]],
                           most_calls: int) -> tuple[set[Any], set[Any]]:  # fmt: skip
    """Scan while `operations` ("insert", "pop" or "scan", and a key) run
    between the steps, then to the end with the table left alone: (the keys
    returned, the keys popped meanwhile). Fails if the scan does not end."""
    seen: set[Any] = set()
    popped: set[Any] = set()
    cursor, calls = 0, 0
    for operation, key in operations:
        if operation == "insert":
            add(key)
        elif operation == "pop" and remove(key):
            popped.add(key)
        elif operation == "scan":
            keys, cursor = step(cursor)
            seen.update(keys)
            calls += 1
            if cursor == 0:
                break
    while cursor or not calls:
        keys, cursor = step(cursor)
        seen.update(keys)
        calls += 1
        assert calls <= most_calls + len(operations), "the scan does not end"
    return seen, popped


def keys_returned_while_growing(add: Add, step: Step, inserts: list[Any], inserts_per_call: int) -> list[Any]:
    """Every key a whole scan returns, `inserts_per_call` of `inserts` added before each step."""
    returned: list[Any] = []
    cursor = 0
    while True:
        for key in inserts[:inserts_per_call]:
            add(key)
        del inserts[:inserts_per_call]
        keys, cursor = step(cursor)
        returned += keys
        if cursor == 0:
            return returned


def whole_scan(step: Step) -> list[Any]:
    """Every key a scan returns from its first step to its last, the table left alone."""
    return keys_returned_while_growing(lambda key: None, step, [], 1)
