"""Where your server stands, chapter by chapter: `make progress SERVER=...`.

    make progress SERVER='python my_server.py --port {port}'
    python tools/progress.py --server 'python my_server.py --port {port}' [--chapters 3 4 7]

Runs each chapter's tests against your server in grader mode (the same
checks as `make test-chapter N SERVER=...`), every chapter even past
failures, and prints one row per chapter: its title, checks passed, and the
first failure in one line. Then it names the chapter to work on next: the
first failing chapter after the last one your server passes entirely
(chapter 03's hello/world test is the only one a RESP server is not meant to
keep passing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.table import Table  # noqa: E402

from tests.support import discover_chapters  # noqa: E402
from tools.report import wide_console  # noqa: E402

CHAPTER_TIMEOUT = 900  # seconds for one chapter's tests


def chapter_title(server_py: Path) -> str:
    """'a key-value server', from the README's first line '# Chapter 07: a key-value server'."""
    readme = server_py.parent / "README.md"
    first = readme.read_text().splitlines()[0] if readme.exists() else ""
    return first.partition(": ")[2] or server_py.parent.name


def grade(chapter: int, server: str) -> dict:
    """The grader's results for one chapter: passed, failed, total, findings; or `error`."""
    with tempfile.TemporaryDirectory(prefix="progress-") as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--chapter", str(chapter),
            "--server", server, "--grader-json", str(report),
        ]  # fmt: skip
        try:
            run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=CHAPTER_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"error": f"the tests did not finish within {CHAPTER_TIMEOUT} s"}
        if report.exists():
            return json.loads(report.read_text())
        tail = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()][-3:]
        return {"error": " / ".join(tail) or f"pytest exited with status {run.returncode}"}


def finding_rank(finding: dict) -> int:
    labels = [label for label, _ in finding["lines"]]
    if "sent" in labels:
        return 0
    if "waiting" in labels:  # a raw request the server did not answer properly
        return 1
    return 3 if labels[:1] == ["server"] else 2


def next_chapter(results: dict[int, dict]) -> int | None:
    """The first failing chapter after the last one that passes entirely."""
    passing = [n for n, r in results.items() if "error" not in r and r["failed"] == 0 and r["total"]]
    after = max(passing, default=min(results) - 1)
    failing = [n for n, r in results.items() if n > after and ("error" in r or r["failed"])]
    return min(failing, default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="your server's command; {port} is the port to listen on")
    parser.add_argument("--chapters", type=int, nargs="+", help="only these chapters (default: all)")
    parser.add_argument("--jobs", type=int, default=4, help="chapters tested at once (default: %(default)s)")
    options = parser.parse_args()
    if "{port}" not in options.server:
        raise SystemExit("--server needs a {port} placeholder, e.g. 'python my_server.py --port {port}'")
    chapters = discover_chapters()
    chosen = sorted(options.chapters or chapters)
    console = wide_console(150)
    missing = [chapter for chapter in chosen if chapter not in chapters]
    if missing:
        raise SystemExit(f"no chapter {missing[0]}; chapters are {sorted(chapters)}")
    console.print(f"[dim]chapters {', '.join(f'{n:02d}' for n in chosen)}, {options.jobs} at a time ...[/dim]")
    # Chapters in parallel: a learner's early server mostly makes the tests wait for replies that never come.
    with ThreadPoolExecutor(options.jobs) as pool:
        results = dict(zip(chosen, pool.map(lambda chapter: grade(chapter, options.server), chosen), strict=True))
    table = Table(title=f"Your server, chapter by chapter: {options.server}")
    table.add_column("chapter", no_wrap=True, min_width=7)
    table.add_column("title", no_wrap=True, overflow="ellipsis", max_width=34)
    table.add_column("passed", justify="right", no_wrap=True, min_width=7)
    table.add_column("first failure", no_wrap=True, overflow="ellipsis", max_width=90)
    for chapter, result in results.items():
        title = chapter_title(chapters[chapter])
        if "error" in result:
            table.add_row(f"{chapter:02d}", title, "[red]-[/red]", result["error"])
            continue
        # The most actionable first: a command and its reply, then other checks, then the tests
        # the server could not even start for (an option it lacks yet).
        findings = sorted(result["findings"], key=finding_rank)
        passed = f"{result['passed']}/{result['total']}"
        style = "green" if result["failed"] == 0 else "red"
        table.add_row(
            f"{chapter:02d}", title, f"[{style}]{passed}[/{style}]",
            f"{findings[0]['test'].partition('::')[2]}: {findings[0]['summary']}" if findings else "",
        )  # fmt: skip
    console.print(table)
    upcoming = next_chapter(results)
    if upcoming is None:
        console.print(
            "Every chapter passes. Next: the chapters beyond the book, or Redis's own suite (make redis-suite)."
        )
    else:
        folder = chapters[upcoming].parent.relative_to(ROOT)
        console.print(
            f"Work on chapter {upcoming:02d} next ({chapter_title(chapters[upcoming])}): read {folder}/README.md, "
            f"then make test-chapter {upcoming} SERVER='{options.server}'"
        )


if __name__ == "__main__":
    main()
