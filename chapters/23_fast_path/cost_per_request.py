"""Where a request's time goes: the per-request cost table of chapter 23's README.

Two measurements of one chapter's server under redis-benchmark's SET then
GET, as make bench runs them (50 clients, pipelines of 16, random keys),
each on a fresh server:

1. CPU per request, unprofiled: the server's user+system time (from
   /proc/<pid>/stat) over the requests it answered. This is the figure
   that matters; nothing else runs in the server.
2. Where it goes, profiled: the same load under cProfile, each function's
   own time as a share of the whole, turned into microseconds of (1) by
   that share. A profiler slows small functions more than big ones, so
   these are proportions to compare between chapters, not exact costs.

    make demo-chapter 23                          # chapters 23 and 22, and the ceiling
    .venv/bin/python chapters/23_fast_path/cost_per_request.py --chapters 22 --requests 400000
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import ServerProcess, discover_chapters  # noqa: E402
from tools.bench import run_benchmark  # noqa: E402

CLIENTS, KEYS = 50, 100_000


def server_options(server: Path) -> list[str]:
    """No snapshots during the measurement (the ceiling has none to turn off)."""
    return [] if server.parent.name == "tools" else ["--save", ""]


def cpu_per_request(server: Path, requests: int, pipeline: int) -> float:
    """Microseconds of the server's CPU per request of SET then GET, unprofiled."""
    process = ServerProcess([sys.executable, str(server), *server_options(server)])
    try:
        before = process.cpu_seconds()
        run_benchmark(process.port, "set,get", CLIENTS, pipeline, requests, KEYS)
        return (process.cpu_seconds() - before) / (2 * requests) * 1e6
    finally:
        process.stop()


def profile(server: Path, requests: int, pipeline: int) -> pstats.Stats:
    """The server's own cProfile statistics for the same load."""
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "profile"
        process = ServerProcess([sys.executable, "-m", "cProfile", "-o", str(output), str(server), *server_options(server)])
        run_benchmark(process.port, "set,get", CLIENTS, pipeline, requests, KEYS)
        process.stop()  # SIGTERM: the server exits, and cProfile writes its file
        return pstats.Stats(str(output))


def cost_table(stats: pstats.Stats, cpu_us: float, rows: int) -> list[tuple[str, float, float]]:
    """(function, share of own time, microseconds per request) for the costliest `rows` functions."""
    own = {key: entry[2] for key, entry in stats.stats.items()}  # (file, line, name) -> own seconds
    total = sum(own.values())
    table = []
    for (file, line, name), seconds in sorted(own.items(), key=lambda item: -item[1])[:rows]:
        where = f"{Path(file).parent.name}/{Path(file).name}" if file != "~" else "(built-in)"
        table.append((f"{name} ({where})", seconds / total, seconds / total * cpu_us))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", default="23,22,ceiling",
                        help="chapters to measure, comma-separated, 'ceiling' for tools/ceiling_server.py "
                             "(default: 23,22,ceiling)")  # fmt: skip
    parser.add_argument("--requests", type=int, default=400_000, help="requests per test (default: 400,000)")
    parser.add_argument("--rows", type=int, default=15, help="functions listed per test (default: 15)")
    parser.add_argument("--pipeline", type=int, default=16, help="requests per client in flight (default: 16)")
    options = parser.parse_args()
    chapters = discover_chapters()
    for name in options.chapters.split(","):
        server = ROOT / "tools" / "ceiling_server.py" if name == "ceiling" else chapters[int(name)]
        cpu_us = cpu_per_request(server, options.requests, options.pipeline)
        print(f"\n{server.parent.name}, SET and GET -P {options.pipeline}: {cpu_us:.2f} us of server CPU per request")
        stats = profile(server, options.requests, options.pipeline)
        for function, share, microseconds in cost_table(stats, cpu_us, options.rows):
            print(f"  {microseconds:6.2f} us  {share:6.1%}  {function}")


if __name__ == "__main__":
    main()
