"""Run Redis's own test suite against a chapter's server: the outside judge.

    make redis-suite 14                     # python tools/redis_suite.py 14
    make redis-suite 14 REDIS_TESTS=dir     # another copy of the suite
    python tools/redis_suite.py redis       # real redis-server, for comparison
    python tools/redis_suite.py 14 --files unit/keyspace unit/quit
    python tools/redis_suite.py 14 --files unit/type/zset --only "ZRANGE basics - skiplist"

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support import ServerProcess, discover_chapters, free_port, server_command  # noqa: E402
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
    "unit/multi",
    "unit/pubsub",
    "unit/type/list",
    "unit/type/hash",
    "unit/type/set",
]
# A file about what a chapter beyond the book introduces runs from that
# chapter on (before it, every one of its tests would fail on the first command).
FIRST_CHAPTER = {"unit/multi": 18, "unit/pubsub": 19, "unit/type/list": 20, "unit/type/hash": 20, "unit/type/set": 20}
# Tests skipped with the harness's own --skiptest, from a first chapter to a
# last, each for a reason: each would leave the connection the file's tests
# share in a state that makes the following tests fail or hang.
BLOCKED_THEN_MULTI = (
    "it blocks a client with BZPOPMIN or BZMPOP, then needs MULTI; failing at MULTI, it leaves that client "
    "blocked, and the next test's data would go to it: that test would wait for ever for its own reply"
)
STOPS_INSIDE_MULTI = (
    "it stops inside MULTI, at a setting this project does not have (maxmemory, min-replicas-to-write), and "
    "leaves the shared client queueing: every following test would get QUEUED"
)
STOPS_INSIDE_MULTI_AT_COMMAND = (
    "with the replication stream there to attach to (chapter 22), it gets as far as MULTI, then stops at a command "
    "this project does not have (SCRIPT, EVAL), leaving the shared client "
    "queueing: every following test would get QUEUED"
)
BLOCKED_THEN_SORT = (
    "it blocks a client, then needs SORT, which is not part of this project; failing at SORT, it leaves that "
    "client blocked with no timeout, and the next tests' pushes would go to it"
)
SKIPPED = [
    *((17, 17, test, BLOCKED_THEN_MULTI) for test in (
        "BZPOPMIN, ZADD + DEL should not awake blocked client",
        "BZPOPMIN, ZADD + DEL + SET should not awake blocked client",
        "BZMPOP_MIN, ZADD + DEL should not awake blocked client",
        "BZMPOP_MIN, ZADD + DEL + SET should not awake blocked client",
        "MULTI/EXEC is isolated from the point of view of BZPOPMIN",
        "MULTI/EXEC is isolated from the point of view of BZMPOP_MIN",
        "BZMPOP with multiple blocked clients",
    )),
    *((20, 99, test, BLOCKED_THEN_SORT) for test in (
        "BLPOP when result key is created by SORT..STORE",
        "BLMPOP_LEFT when result key is created by SORT..STORE",
    )),
    *((22, 99, test, STOPS_INSIDE_MULTI_AT_COMMAND) for test in (
        "MULTI propagation of SCRIPT LOAD",
        "MULTI propagation of EVAL",
        "MULTI propagation of SCRIPT FLUSH",
    )),
    (18, 21, "exec with write commands and state change", STOPS_INSIDE_MULTI),  # chapter 22 has min-replicas
    *((18, 99, test, STOPS_INSIDE_MULTI) for test in (
        "EXEC fails if there are errors while queueing commands #2",
        "EXEC with only read commands should not be rejected when OOM",
        "EXEC with at least one use-memory command should fail",
    )),
]  # fmt: skip
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
        "zset.tcl switches sorted-set encodings outside any test; before chapter 17 there is one encoding and "
        "no such setting, so the switch fails, and uncaught it would abort the file (the encoding tests are "
        "listed); from chapter 17 on the setting exists and the catch changes nothing",
    ),
    (
        "tests/unit/type/list.tcl",
        re.compile(r"^(\s*)r config set (list-compress-depth \S+)$"),
        r"\1catch {r config set \2}",
        "list.tcl turns on the compression of inner quicklist nodes outside any test; chapter 20's quicklist "
        "does not compress (CONFIG SET refuses the setting), so the switch fails, and uncaught it would abort "
        "the file; the tests inside check values, which compression does not change",
    ),
]

LINE = re.compile(r"^\[(ok|err|ignore|skip|exception)\]: (.*?)(?: \(\d+ ms\))?$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
IN_FILE = re.compile(r" in tests/\S+$")  # how the harness ends the name of a test that failed
RUN = re.compile(r" \[run \d+\]$")  # the suffix given to the Nth run of a test name


@dataclass
class FileResult:
    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (test, first line of the error)
    errors: dict[str, str] = field(default_factory=dict)  # test -> the error's first lines
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


def harness_baseport() -> int:
    """Where the harness looks for its own port (32 below this): a free one, so that runs side by side
    (a test of the README while another run goes on) do not take the same fixed port."""
    while True:
        port = free_port()
        if 1100 < port < 55000:
            return port


def run_file(suite: Path, port: int, name: str, only: tuple[str, ...] = (), skip: list[str] | None = None) -> FileResult:
    """Run one file (or only the tests named in `only`, and not those in `skip`) against the server on `port`."""
    result = FileResult(name)
    started = time.monotonic()
    command = [
        "tclsh", "tests/test_helper.tcl", "--host", "127.0.0.1", "--port", str(port),
        "--singledb", "--durable", "--clients", "1", "--tags", "-needs:debug", "--single", name,
        "--baseport", str(harness_baseport()),
    ]  # fmt: skip
    for test in only:
        command += ["--only", RUN.sub("", test)]
    for test in skip or ():
        command += ["--skiptest", test]
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
        if (where := IN_FILE.search(test)) is not None:
            test = test[: where.start()]
        elif status in ("err", "exception"):
            # An error outside any test: the harness names it by its message, which may quote
            # whatever reply came (random in zset.tcl); name it by the message's shape.
            # A failed assertion quotes a reply that may itself hold quotes (an
            # error naming its command): everything quoted goes, whatever it held.
            if "(context:" in test:
                shape = re.sub(r"'.*'", "'...'", test)
                shape = re.sub(r"(\(context: .*? line \d+).*", r"\1", shape)  # where, not what it ran
            else:
                shape = re.sub(r"'[^']*'", "'...'", test)[:60].rstrip()
            test = "error outside any test: " + shape
        runs[test] += 1
        if runs[test] > 1:
            test = f"{test} [run {runs[test]}]"
        if status == "ok":
            result.passed.append(test)
        elif status in ("ignore", "skip"):
            result.skipped += 1
        else:
            # The error, up to the next status line: its first line names the failure; the
            # whole of it is kept for a run of one test, where nothing else prints there.
            block = []
            for following in lines[index + 1 : index + 6]:
                if following.startswith("["):
                    break
                block.append(following.strip())
            result.failed.append((test, block[0][:160] if block else ""))
            result.errors[test] = " ".join(filter(None, block))[:300]
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


def write_expectations(
    chapter: int,
    results: list[FileResult],
    previous: dict[tuple[str, str], str],
    run_alone: Callable[[str, str], FileResult],
    available: frozenset[str] = frozenset(),
) -> Path:
    """Write the list from this run's failures, keeping the reasons already written.

    A failure whose message names no missing command usually follows an
    earlier test that stopped midway (at a command this chapter lacks) and
    left the shared connection in RESP3 or readraw mode; such a test is run
    again alone, on a fresh server, to tell that from a real difference.
    """
    path = EXPECTATIONS / f"chapter_{chapter:02d}.txt"
    lines = [
        f"# Redis 7.0.15's own tests that chapter {chapter:02d} is expected to fail, and why.",
        "# Format: file: test name  # reason. Regenerate: python tools/redis_suite.py N --write-expectations",
    ]
    for result in results:
        for test, detail in dict.fromkeys(result.failed):
            reason = previous.get((result.name, test)) or guess_reason(detail, available=available)
            if reason == UNEXPLAINED:
                alone = run_alone(result.name, test)
                name = RUN.sub("", test)  # a test in a loop runs once per turn, alone too
                failed_alone = [other for other, _ in alone.failed if RUN.sub("", other) == name]
                if failed_alone:
                    error = alone.errors[failed_alone[0]]
                    reason = guess_reason(error, test, available)
                    if reason == UNEXPLAINED:
                        reason = f"{TO_REVIEW}: fails alone too: {error[:100]}"
                elif any(RUN.sub("", other) == name for other in alone.passed):
                    reason = PASSES_ALONE
            lines.append(f"{result.name}: {test}  # {reason}")
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def chapter_commands(command: list[str]) -> frozenset[str]:
    """The commands a chapter's server has, from its COMMAND reply."""
    server = ServerProcess(command)
    try:
        with redis.Redis(port=server.port) as client:
            return frozenset(name.lower() for name in client.command())
    finally:
        server.stop()


def stale(reason: str, available: frozenset[str]) -> bool:
    """A reason to write again: it blames a command the chapter now has, or
    an earlier test that stopped (which may have changed with the chapter)."""
    missing = re.match(r"([A-Z]+)(?: is not in this chapter| \.\.\. )", reason)
    return bool(missing and missing.group(1).lower() in available) or reason.startswith(("follows ", "passes alone"))


# Why a command is missing, by family: for reasons in the expectation lists.
NOT_IN_PROJECT = {
    "lists are not part of this project": "lpush rpush lpop rpop llen lrange blpop brpop",
    "sets are not part of this project": "sadd srem smembers sscan scard srandmember",
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


def guess_reason(detail: str, test: str = "", available: frozenset[str] = frozenset()) -> str:
    """A first reason for a failure, from its message (or a missing command
    the test is named after, not one of the chapter's `available` commands);
    the lists are reviewed by hand."""
    command = re.search(r"command '([^']+)', with args", detail)
    named = [
        word.lower() for word in re.findall(r"\b([A-Z]+)(?:_[A-Z]+)?\b", test)
        if word.lower() in CHAPTER_17 and word.lower() not in available
    ]  # fmt: skip
    if command or named:
        name = command.group(1).lower() if command else named[0]
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
    return UNEXPLAINED


UNEXPLAINED = "no missing command named in the failure"
TO_REVIEW = "TO REVIEW"
PASSES_ALONE = (
    "passes alone (--only); here it follows a test that stopped midway at a command this chapter lacks, "
    "leaving the connection in RESP3 or readraw mode, or its keys not made"
)


def judge(chapter: int | None, results: list[FileResult]) -> tuple[list[str], Counter]:
    """Problems with this run, and per file the count of expected failures."""
    expected = read_expectations(chapter) if chapter is not None else {}
    problems: list[str] = [
        f"{file}: {test}: the list gives no reason yet ({reason})"
        for (file, test), reason in expected.items()
        if reason.startswith(TO_REVIEW)
    ]
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
    parser.add_argument("--files", nargs="+", help="test files to run (default: all those that apply to the chapter)")
    parser.add_argument("--only", action="append", default=[], metavar="TEST", help="run only this test (repeatable)")
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

        def run_fresh(name: str, only: tuple[str, ...] = ()) -> FileResult:
            server = ServerProcess(command, own_server=own_server, chapter=chapter)  # a fresh one per run
            try:
                skip = [test for first, last, test, _why in SKIPPED if first <= (chapter or 0) <= last]
                result = run_file(suite, server.port, name, only, skip)
                if server.process.poll() is not None:
                    raise SystemExit(f"the server died during {name}:\n{server.output()[-3000:]}")
                return result
            finally:
                if server.process.poll() is None:
                    server.stop()

        files = options.files or [name for name in FILES if FIRST_CHAPTER.get(name, 0) <= (chapter or 99)]
        for name in files:
            console.print(f"[dim]{title}: {name} ...[/dim]")
            results.append(run_fresh(name, tuple(options.only)))
        if options.write_expectations and chapter is not None:
            if options.only:
                raise SystemExit("--write-expectations needs whole files, not --only")
            available = chapter_commands(command)
            previous = {
                key: reason
                for key, reason in read_expectations(chapter).items()
                if reason != UNEXPLAINED and not reason.startswith(TO_REVIEW) and not stale(reason, available)
            }
            path = write_expectations(
                chapter, results, previous, lambda name, test: run_fresh(name, (test,)), available
            )
            console.print(f"wrote {path}")
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
