"""CONFIG GET / SET / RESETSTAT over the settings a server really has.

Redis-compatibility glue that no chapter teaches, used from chapter 07 on:
redis-cli, redis-benchmark and Redis's own test harness read and change
settings with CONFIG. Each server registers the settings it has, with a
getter and, if it can change at run time, a setter that really changes
it; every other parameter is unknown here, exactly as Redis treats a
parameter it does not have (CONFIG GET answers nothing, CONFIG SET fails).
A setting is never accepted and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from common.glob import compile_glob
from common.resp import parse_integer

# Redis's memory units (memtoll): k, m, g are powers of 1000, kb, mb, gb of 1024.
_MEMORY = re.compile(rb"(-?[0-9]+)(b|k|kb|m|mb|g|gb)?", re.IGNORECASE)
_UNITS = {b"": 1, b"b": 1, b"k": 1000, b"kb": 1024, b"m": 1000**2, b"mb": 1024**2, b"g": 1000**3, b"gb": 1024**3}


def parse_memory(text: bytes | str) -> int | None:
    """A size as Redis's configuration reads one ("1gb", "512mb", "64k", "100"), or None."""
    data = text.encode() if isinstance(text, str) else text
    match = _MEMORY.fullmatch(data)
    if match is None or parse_integer(match.group(1)) is None:
        return None
    return int(match.group(1)) * _UNITS[(match.group(2) or b"").lower()]


def memory_argument(text: str) -> int:
    """For argparse: a size with Redis's units."""
    value = parse_memory(text)
    if value is None or value < 0:
        raise ValueError(text)
    return value


memory_argument.__name__ = "size"  # argparse's error names the type


@dataclass(slots=True)
class Setting:
    """One parameter: how to read it (as CONFIG GET shows it), and how to
    change it (None: it cannot change while the server runs). `set`
    returns None, or the reason the value is refused."""

    get: Callable[[], bytes]
    set: Callable[[bytes], str | None] | None = None


class Config:
    """The settings of one server, by Redis's parameter names."""

    def __init__(self) -> None:
        self.settings: dict[bytes, Setting] = {}
        self.reset_stats: list[Callable[[], None]] = []  # what CONFIG RESETSTAT clears

    def add(self, name: str, get: Callable[[], object], set: Callable[[bytes], str | None] | None = None) -> None:
        self.settings[name.encode()] = Setting(lambda: str(get()).encode(), set)

    def add_integer(self, name: str, get: Callable[[], int], set: Callable[[int], None], minimum: int = 0,
                    maximum: int = 2**63 - 1, memory: bool = False) -> None:  # fmt: skip
        """An integer setting (with Redis's memory units if `memory`)."""

        def set_text(text: bytes) -> str | None:
            value = parse_memory(text) if memory else parse_integer(text)
            if value is None:
                return "argument must be a memory value" if memory else "argument couldn't be parsed into an integer"
            if not minimum <= value <= maximum:
                return f"argument must be between {minimum} and {maximum} inclusive"
            set(value)
            return None

        self.add(name, get, set_text)

    def add_boolean(self, name: str, get: Callable[[], bool], set: Callable[[bool], None]) -> None:
        """A yes/no setting, as Redis's bool configs."""

        def set_text(text: bytes) -> str | None:
            value = text.lower()
            if value not in (b"yes", b"no"):
                return "argument must be 'yes' or 'no'"
            set(value == b"yes")
            return None

        self.add(name, lambda: "yes" if get() else "no", set_text)

    def get(self, patterns: list[bytes]) -> list[tuple[bytes, bytes]]:
        """(name, value) for every parameter matching one of the glob patterns, once each."""
        found: dict[bytes, bytes] = {}
        longest = max(map(len, self.settings), default=0)
        for pattern in patterns:
            matches = compile_glob(pattern.lower(), longest)  # names are lower case; Redis ignores case here
            for name, setting in self.settings.items():
                if name not in found and matches(name):
                    found[name] = setting.get()
        return list(found.items())
