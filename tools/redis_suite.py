"""Run Redis's own test suite against a chapter's server: the outside judge.

    make redis-suite 14                     # python tools/redis_suite.py 14
    make redis-suite 14 REDIS_TESTS=dir     # another copy of the suite
    python tools/redis_suite.py redis       # real redis-server, for comparison
    python tools/redis_suite.py 14 --files unit/keyspace unit/quit

The suite is the `runtest` script and `tests/` folder of the Redis 7.0.15
source release (BSD licence); the project keeps the harness and eight test
files in ../shared/redis-tests. It runs in external mode against the
chapter's server, started on a free port and stopped at the end.

The suite's files are never edited: a temporary copy is patched, one line
per patch, where the harness assumes what this project does not have
(PATCHES below says why for each). Every test a chapter is expected to fail
is listed, with its reason, in tests/redis_suite/chapter_NN.txt. The run
fails when a test fails that is not listed, when a listed test passes (so
the lists stay true), or when a file does not run to its end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.table import Table  # noqa: E402

from tests.support import ServerProcess, discover_chapters, server_command  # noqa: E402
from tools.report import wide_console  # noqa: E402

DEFAULT_SUITE = ROOT.parent / "shared" / "redis-tests"
EXPECTATIONS = ROOT / "tests" / "redis_suite"
FILES = [
    "unit/protocol",
    "unit/keyspace",
    "unit/expire",
    "unit/lazyfree",
    "unit/quit",
    "unit/info-command",
    "unit/scan",
    "unit/type/zset",
]
FILE_TIMEOUT = 600  # seconds; a file that takes longer counts as not run to its end

# (file, line to replace, replacement, why): each applies to every line equal to the first.
PATCHES = [
    (
        "tests/support/server.tcl",
        re.compile(r"^(\s*)r flushall$"),
        r"\1catch {r flushall}",
        "the harness empties the database before each file; chapters 07-08 have no FLUSHALL, and the runner "
        "starts a fresh server for every file, so it is empty anyway",
    ),
    (
        "tests/support/server.tcl",
        re.compile(r"^(\s*)r function flush$"),
        r"\1catch {r function flush}",
        "the harness flushes Redis functions before each file; this project has no scripting, so nothing to flush",
    ),
    (
        "tests/unit/type/zset.tcl",
        re.compile(r"^(\s*)r config set (zset-max-ziplist-\S+ .*)$"),
        r"\1catch {r config set \2}",
        "zset.tcl switches sorted-set encodings outside any test; this project has one encoding and no such "
        "setting, so the switch fails, and uncaught it would abort the file (the encoding tests are listed)",
    ),
]

LINE = re.compile(r"^\[(ok|err|ignore|skip|exception)\]: (.*?)(?: \(\d+ ms\))?$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class FileResult:
    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (test, first line of the error)
    skipped: int = 0
    seconds: float = 0.0
    finished: bool = False


def prepare_suite(source: Path, into: Path) -> Path:
    """A patched copy of the suite (the harness writes into tests/tmp)."""
    suite = into / "redis-tests"
    shutil.copytree(source, suite)
    for path in suite.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    for relative, pattern, replacement, _why in PATCHES:
        target = suite / relative
        lines = target.read_text().split("\n")
        patched = [pattern.sub(replacement, line) for line in lines]
        if patched == lines:
            raise SystemExit(f"patch no longer applies to {relative}: {pattern.pattern}")
        target.write_text("\n".join(patched))
    return suite


def run_file(suite: Path, port: int, name: str) -> FileResult:
    result = FileResult(name)
    started = time.monotonic()
    command = [
        "tclsh", "tests/test_helper.tcl", "--host", "127.0.0.1", "--port", str(port),
        "--singledb", "--durable", "--clients", "1", "--tags", "-needs:debug", "--single", name,
    ]  # fmt: skip
    try:
        output = subprocess.run(
            command, cwd=suite, capture_output=True, text=True, errors="replace", timeout=FILE_TIMEOUT
        ).stdout
    except subprocess.TimeoutExpired as timeout:
        output = timeout.stdout.decode(errors="replace") if isinstance(timeout.stdout, bytes) else timeout.stdout or ""
    result.seconds = time.monotonic() - started
    # Errors name files in the temporary copy: drop its path, so that names are the same every run.
    lines = [ANSI.sub("", line).replace(f"{suite}/", "") for line in output.splitlines()]
    runs: Counter = Counter()  # a test inside a loop runs under one name several times
    for index, line in enumerate(lines):
        match = LINE.match(line)
        if match is None:
            if re.match(rf"^\[\d+/\d+ done\]: {re.escape(name)} ", line):
                result.finished = True
            continue
        status, test = match.groups()
        test = re.sub(r" in tests/\S+$", "", test)
        runs[test] += 1
        if runs[test] > 1:
            test = f"{test} [run {runs[test]}]"
        if status == "ok":
            result.passed.append(test)
        elif status in ("ignore", "skip"):
            result.skipped += 1
        else:
            detail = lines[index + 1].strip() if index + 1 < len(lines) else ""
            result.failed.append((test, detail[:160]))
    return result


def read_expectations(chapter: int) -> dict[tuple[str, str], str]:
    """(file, test) -> reason, from tests/redis_suite/chapter_NN.txt."""
    path = EXPECTATIONS / f"chapter_{chapter:02d}.txt"
    expected: dict[tuple[str, str], str] = {}
    if not path.exists():
        return expected
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        entry, _, reason = line.rpartition("  # ")
        file, _, test = entry.partition(": ")
        expected[(file, test)] = reason
    return expected


def write_expectations(chapter: int, results: list[FileResult], previous: dict[tuple[str, str], str]) -> Path:
    """Write the list from this run's failures, keeping the reasons already written."""
    path = EXPECTATIONS / f"chapter_{chapter:02d}.txt"
    lines = [
        f"# Redis 7.0.15's own tests that chapter {chapter:02d} is expected to fail, and why.",
        "# Format: file: test name  # reason. Regenerate: python tools/redis_suite.py N --write-expectations",
    ]
    for result in results:
        for test, detail in dict.fromkeys(result.failed):
            reason = previous.get((result.name, test)) or guess_reason(detail)
            lines.append(f"{result.name}: {test}  # {reason}")
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# Why a command is missing, by family: for reasons in the expectation lists.
NOT_IN_PROJECT = {
    "lists are not part of this project": "lpush rpush lpop rpop llen lrange blpop brpop",
    "sets are not part of this project": "sadd srem smembers sscan scard",
    "hashes are not part of this project": "hset hmset hget hgetall hscan",
    "streams are not part of this project": "xadd xgroup xreadgroup",
    "replication is not part of this project": "replicaof slaveof sync psync",
}
CHAPTER_17 = (
    "mset mget setex psetex getex getdel getset incr incrby incrbyfloat decr decrby append rename renamenx "
    "copy randomkey scan zscan time object touch zpopmin zpopmax bzpopmin bzpopmax zmpop bzmpop zrangebylex "
    "zrevrangebylex zlexcount zremrangebyscore zremrangebyrank zremrangebylex zunion zinter zdiff zunionstore "
    "zinterstore zdiffstore zintercard zrandmember zrangestore"
).split()


def guess_reason(detail: str) -> str:
    """A first reason for a failure, from its message; the lists are reviewed by hand."""
    command = re.search(r"command '([^']+)', with args", detail)
    if command:
        name = command.group(1).lower()
        for reason, names in NOT_IN_PROJECT.items():
            if name in names.split():
                return f"{name.upper()}: {reason}"
        if name in CHAPTER_17:
            return f"{name.upper()} is not in this chapter (chapter 17 completes strings, keys and sorted sets)"
        return f"{name.upper()} is not in this chapter"
    setting = re.search(r"CONFIG SET - '([^']+)'", detail)
    if setting:
        return f"CONFIG SET {setting.group(1)}: a setting this server does not have"
    if re.search(r"to match '(listpack|skiplist)'", detail):
        return "OBJECT ENCODING: one sorted-set encoding here, and no OBJECT command"
    return "after an earlier failure in this file (connection left in RESP3 or with an unread reply); to investigate"


def judge(chapter: int | None, results: list[FileResult]) -> tuple[list[str], Counter]:
    """Problems with this run, and per file the count of expected failures."""
    expected = read_expectations(chapter) if chapter is not None else {}
    problems: list[str] = []
    expected_failures: Counter = Counter()
    for result in results:
        if not result.finished:
            problems.append(f"{result.name}: did not run to its end")
        for test, detail in result.failed:
            if (result.name, test) in expected:
                expected_failures[result.name] += 1
            else:
                problems.append(f"{result.name}: unexpected failure: {test}: {detail}")
        for test in result.passed:
            if (result.name, test) in expected:
                problems.append(f"{result.name}: listed as expected to fail, but passed: {test}")
    return problems, expected_failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="a chapter number, or 'redis' for real redis-server")
    parser.add_argument("--redis-tests", type=Path, default=DEFAULT_SUITE, help="the suite (default: %(default)s)")
    parser.add_argument("--files", nargs="+", default=FILES, help="test files to run (default: all eight)")
    parser.add_argument("--write-expectations", action="store_true", help="write this run's failures as the list")
    options = parser.parse_args()
    if shutil.which("tclsh") is None:
        raise SystemExit("the suite needs Tcl 8.6 (Debian: apt-get install tcl)")
    if not (options.redis_tests / "tests" / "test_helper.tcl").exists():
        raise SystemExit(f"no Redis test suite in {options.redis_tests} (see its README)")
    chapter = None if options.chapter == "redis" else int(options.chapter)
    if chapter is None:
        binary = shutil.which("redis-server") or sys.exit("redis-server is not installed")
        command, own_server, title = [binary, "--save", "", "--appendonly", "no"], False, "real Redis"
    else:
        chapters = discover_chapters()
        if chapter not in chapters:
            raise SystemExit(f"no chapter {chapter}; chapters are {sorted(chapters)}")
        command, own_server, title = server_command(chapters[chapter]), True, f"chapter {chapter:02d}"
    console = wide_console()
    results = []
    with tempfile.TemporaryDirectory(prefix="redis-suite-") as scratch:
        suite = prepare_suite(options.redis_tests, Path(scratch))
        for name in options.files:
            console.print(f"[dim]{title}: {name} ...[/dim]")
            server = ServerProcess(command, own_server=own_server, chapter=chapter)  # a fresh one per file
            try:
                results.append(run_file(suite, server.port, name))
                if server.process.poll() is not None:
                    raise SystemExit(f"the server died during {name}:\n{server.output()[-3000:]}")
            finally:
                if server.process.poll() is None:
                    server.stop()
    if options.write_expectations and chapter is not None:
        console.print(f"wrote {write_expectations(chapter, results, read_expectations(chapter))}")
    problems, expected_failures = judge(chapter, results)
    table = Table(title=f"Redis 7.0.15's test suite against {title}")
    for heading in ("file", "passed", "failed", "expected to fail", "skipped", "seconds", "ran to its end"):
        table.add_column(heading, justify="left" if heading == "file" else "right")
    for result in results:
        unexpected = len(result.failed) - expected_failures[result.name]
        table.add_row(
            result.name, str(len(result.passed)), f"[red]{unexpected}[/red]" if unexpected else "0",
            str(expected_failures[result.name]), str(result.skipped), f"{result.seconds:.1f}",
            "yes" if result.finished else "[red]no[/red]",
        )  # fmt: skip
    table.add_row(
        "all", str(sum(len(r.passed) for r in results)),
        str(sum(len(r.failed) for r in results) - sum(expected_failures.values())),
        str(sum(expected_failures.values())), str(sum(r.skipped for r in results)),
        f"{sum(r.seconds for r in results):.1f}", "", style="bold",
    )  # fmt: skip
    console.print(table)
    for problem in problems:
        console.print(problem, style="red", markup=False, highlight=False)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
