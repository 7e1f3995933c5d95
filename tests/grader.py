"""Grader mode's report: what a learner needs to fix a failing server.

With ``--server`` (``make test-chapter N SERVER=...``), pytest's tracebacks
are replaced by one short entry per failing check:

    test_key_value.py::test_set_get_del  (chapter 07, "Commands")
      sent      DEL k k other
      expected  (integer) 1
      received  (integer) 3
      reread    chapters/07_key_value/README.md, section "Commands"

The command comes from the test client's transcript (tests/support.py
RawClient), the expected reply from the test or from real Redis in a
differential test, both shown as redis-cli shows them. ``--pytest-details``
brings pytest's own output back. ``--grader-json FILE`` writes the counts
and the first line of each failure, for `make progress` (tools/progress.py).

A test names the README section that teaches what it checks with
``@pytest.mark.readme("heading")`` (on the test or its module); the
chapter is the test's ``since`` chapter, or ``readme("heading", chapter=N)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support import (
    CHAPTERS_DIR,
    OPEN_CLIENTS,
    ConnectionClosed,
    Exchange,
    NoReply,
    ReplyMismatch,
    discover_chapters,
)

# The last failing `==` of the running test (pytest_assertrepr_compare), as (received, expected).
COMPARISONS: list[tuple[object, object]] = []
MAX_SHOWN = 300  # characters of a reply or an argument shown before eliding the rest
MAX_LINES = 20  # lines of one field of the report


@dataclass
class Finding:
    """One failing check, in the words of the report."""

    test: str
    chapter: int
    readme: str
    section: str | None
    lines: list[tuple[str, str]] = field(default_factory=list)  # (label, text)

    def summary(self) -> str:
        """The finding on one line, for `make progress`."""
        parts = dict(self.lines)
        if "received" in parts and "sent" in parts:
            return f"{parts['sent']}: expected {one_line(parts['expected'])}, received {one_line(parts['received'])}"
        return "; ".join(one_line(text) for _, text in self.lines[:2])


def one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 100 else text[:97] + "..."


# --- redis-cli's way of showing commands and replies ---------------------------


def show_argument(argument: bytes | str | int) -> str:
    data = argument if isinstance(argument, bytes) else str(argument).encode()
    elided = len(data) > MAX_SHOWN
    text = quote(data[:MAX_SHOWN])
    if text == data.decode(errors="replace") and text and " " not in text and not elided:
        return text
    return f'"{text}"' + (f"...({len(data)} bytes)" if elided else "")


def quote(data: bytes) -> str:
    """Bytes as redis-cli prints them inside quotes: printable ASCII, the rest escaped."""
    escapes = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("\\"): "\\\\"}
    return "".join(escapes.get(b, chr(b) if 32 <= b < 127 else f"\\x{b:02x}") for b in data)


def show_sent(exchange: Exchange) -> str:
    if isinstance(exchange.sent, bytes):
        return f"raw bytes {quote(exchange.sent[:MAX_SHOWN])!r}" + ("..." if len(exchange.sent) > MAX_SHOWN else "")
    return " ".join(show_argument(argument) for argument in exchange.sent)


def show_reply(raw: bytes) -> str:
    """A raw RESP2/RESP3 reply as redis-cli shows it; the raw bytes if it does not parse."""
    try:
        value, end = parse_reply(raw, 0)
        if end != len(raw):
            raise ValueError("trailing bytes")
    except (ValueError, IndexError):
        return f"raw bytes {raw[:MAX_SHOWN]!r}"
    return "\n".join(render(value))


def parse_reply(raw: bytes, start: int) -> tuple[object, int]:
    """(value, end) of the reply at `start`: typed values as tuples (kind, payload)."""
    line_end = raw.index(b"\r\n", start)
    kind, line = raw[start : start + 1], raw[start + 1 : line_end]
    position = line_end + 2
    if kind in b"$=!":
        length = int(line)
        if length < 0:
            return ("nil", None), position
        data = raw[position : position + length]
        if len(data) != length or raw[position + length : position + length + 2] != b"\r\n":
            raise ValueError("short bulk")
        return ({b"$": "bulk", b"=": "verbatim", b"!": "error"}[kind], data), position + length + 2
    if kind in b"*~>%":
        count = int(line)
        if count < 0:
            return ("nil", None), position
        items = []
        for _ in range(count * 2 if kind == b"%" else count):
            item, position = parse_reply(raw, position)
            items.append(item)
        return ({b"*": "array", b"~": "set", b">": "push", b"%": "map"}[kind], items), position
    simple = {
        b"+": "status",
        b"-": "error",
        b":": "integer",
        b"(": "integer",
        b",": "double",
        b"#": "bool",
        b"_": "nil",
    }
    if kind not in simple:
        raise ValueError(f"unknown type {kind!r}")
    return (simple[kind], line), position


def render(value: tuple) -> list[str]:
    kind, payload = value
    if kind == "nil":
        return ["(nil)"]
    if kind == "status":
        return [payload.decode(errors="replace")]
    if kind == "error":
        return [f"(error) {payload.decode(errors='replace')}"]
    if kind == "integer":
        return [f"(integer) {payload.decode()}"]
    if kind == "double":
        return [f"(double) {payload.decode()}"]
    if kind == "bool":
        return ["(true)" if payload == b"t" else "(false)"]
    if kind == "bulk":
        return [f'"{quote(payload[:MAX_SHOWN])}"' + ("..." if len(payload) > MAX_SHOWN else "")]
    if kind == "verbatim":
        return payload[4:].decode(errors="replace").splitlines()
    if not payload:
        return ["(empty array)" if kind != "map" else "(empty hash)"]
    lines = []
    if kind == "map":
        pairs = list(zip(payload[::2], payload[1::2], strict=True))
        for number, (name, item) in enumerate(pairs, 1):
            head = f"{number}# {render(name)[0]} => "
            body = render(item)
            lines += [head + body[0], *(" " * len(head) + line for line in body[1:])]
        return lines
    marker = "~" if kind == "set" else ")"
    for number, item in enumerate(payload, 1):
        head = f"{number}{marker} "
        body = render(item)
        lines += [head + body[0], *(" " * len(head) + line for line in body[1:])]
    return lines


# --- what went wrong ----------------------------------------------------------


def graded(config: pytest.Config) -> bool:
    return config.getoption("--server") is not None


def exchange_with_reply(reply: bytes) -> Exchange | None:
    """The most recent exchange of this test that got `reply`."""
    for client in reversed(OPEN_CLIENTS):
        for exchange in reversed(client.transcript):
            if exchange.reply == reply:
                return exchange
    return None


def waiting_exchange() -> Exchange | None:
    for client in reversed(OPEN_CLIENTS):
        if (exchange := client.waiting_for()) is not None:
            return exchange
    return None


def failing_line(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str:
    """The statement of the test (not of a helper) that failed."""
    path = Path(str(item.fspath))
    for entry in reversed(excinfo.traceback):
        if Path(str(entry.path)) == path:
            return " ".join(str(entry.statement).split())
    return ""


def readme_chapter(item: pytest.Item) -> int:
    """The chapter whose README teaches what the test checks: `readme(..., chapter=N)`, else its `since`."""
    marker, since = item.get_closest_marker("readme"), item.get_closest_marker("since")
    if marker is not None and "chapter" in marker.kwargs:
        return marker.kwargs["chapter"]
    return since.args[0] if since else min(discover_chapters())


def describe(item: pytest.Item, excinfo: pytest.ExceptionInfo, when: str) -> Finding:
    chapter, marker = readme_chapter(item), item.get_closest_marker("readme")
    folder = next(CHAPTERS_DIR.glob(f"{chapter:02d}_*"))
    finding = Finding(
        test=item.nodeid.removeprefix("tests/"),
        chapter=chapter,
        readme=str((folder / "README.md").relative_to(CHAPTERS_DIR.parent)),
        section=marker.args[0] if marker else None,
    )
    error = excinfo.value
    add = finding.lines.append
    if when != "call":
        # The server fixture: it did not start with these tests' options, or died, or printed a traceback.
        add(("server", str(error).strip() if when == "setup" else f"at the end of the tests: {str(error).strip()}"))
    elif isinstance(error, ReplyMismatch):
        add(("sent", show_sent(Exchange(error.sent))))
        add(("expected", f"{show_reply(error.expected)}   <- {error.source}'s reply"))
        add(("received", show_reply(error.received)))
    elif isinstance(error, NoReply | ConnectionClosed | ConnectionError | redis.ConnectionError | redis.TimeoutError):
        what = {NoReply: str(error), ConnectionClosed: f"the server {error}"}.get(type(error))
        add(("problem", what or error_text(error)))
        if (waiting := waiting_exchange()) is not None:
            add(("waiting", f"for the reply to {show_sent(waiting)}"))
        add(("check", failing_line(item, excinfo)))
    elif isinstance(error, AssertionError) and COMPARISONS:
        received, expected = COMPARISONS[-1]
        exchange = exchange_with_reply(received) if isinstance(received, bytes) else None
        if exchange is not None:
            add(("sent", show_sent(exchange)))
        else:
            add(("check", failing_line(item, excinfo)))
        show = show_reply if isinstance(received, bytes) and isinstance(expected, bytes) else repr
        add(("expected", show(expected)))
        add(("received", show(received)))
    else:
        add(("check", failing_line(item, excinfo)))
        add(("problem", error_text(error)))
    return finding


def error_text(error: BaseException) -> str:
    """The exception's type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


# --- hooks ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pytest-details", action="store_true", help="grader mode: keep pytest's own tracebacks")
    parser.addoption("--grader-json", help="grader mode: write the results to this file (for make progress)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "readme(section, chapter=N): the README section that teaches what a test checks")
    config.stash[FINDINGS] = []
    config.stash[COUNTS] = {"passed": 0, "failed": 0, "total": 0}
    config.stash[SEEN_ERRORS] = []
    if graded(config) and not config.getoption("--pytest-details"):
        config.option.tbstyle = "no"
        config.option.reportchars = ""


FINDINGS = pytest.StashKey[list[Finding]]()
COUNTS = pytest.StashKey[dict[str, int]]()
SEEN_ERRORS = pytest.StashKey[list[BaseException]]()  # kept alive: compared by identity
STOPPED = pytest.StashKey[bool]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[COUNTS]["total"] = len(session.items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    OPEN_CLIENTS.clear()
    COMPARISONS.clear()


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> None:
    if op == "==":
        COMPARISONS.append((left, right))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    counts = item.config.stash[COUNTS]
    if report.when == "call" and report.passed:
        counts["passed"] += 1
    if report.failed and call.excinfo is not None:
        counts["failed"] += report.when != "teardown"
        # A module's server fixture fails every test of the module with one exception: report it once.
        # (By identity, with the exceptions kept: an id() alone could be reused by a later failure.)
        seen = item.config.stash[SEEN_ERRORS]
        if graded(item.config) and not any(error is call.excinfo.value for error in seen):
            seen.append(call.excinfo.value)
            item.config.stash[FINDINGS].append(describe(item, call.excinfo, report.when))
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not graded(config):
        return
    findings = config.stash[FINDINGS]
    counts = config.stash[COUNTS]
    write = terminalreporter.write_line
    if config.stash.get(STOPPED, False):
        return  # pytest.exit has printed the reason
    if findings and not config.getoption("--pytest-details"):
        terminalreporter.section(f"{len(findings)} failing check(s) of your server", sep="=")
        for finding in findings:
            write("")
            where = f"chapter {finding.chapter:02d}" + (f', "{finding.section}"' if finding.section else "")
            write(f"{finding.test}  ({where})", red=True, bold=True)
            for label, text in finding.lines:
                body = text.splitlines() or [""]
                write(f"  {label:<10} {body[0]}")
                for line in body[1:MAX_LINES]:
                    write(f"  {'':<10} {line}")
                if len(body) > MAX_LINES:
                    write(f"  {'':<10} ... ({len(body) - MAX_LINES} more lines)")
            reread = finding.readme + (f', section "{finding.section}"' if finding.section else "")
            write(f"  {'reread':<10} {reread}")
        write("")
        write("pytest's own tracebacks: add --pytest-details (make test-chapter N SERVER=... DETAILS=1)")
    write_json(config, {**counts, "findings": [{**asdict(f), "summary": f.summary()} for f in findings]})


def write_json(config: pytest.Config, result: dict) -> None:
    if path := config.getoption("--grader-json"):
        Path(path).write_text(json.dumps(result, indent=1))


def stop_run(config: pytest.Config, message: str) -> None:
    """The server cannot start at all: say so once, with its output, and stop."""
    write_json(config, {"error": one_line(message.splitlines()[-1] if message.strip() else message)})
    config.stash[STOPPED] = True
    pytest.exit(message, returncode=pytest.ExitCode.TESTS_FAILED)
