"""Grader mode's report (tests/grader.py) and `make progress` (tools/progress.py),
run as a learner runs them: on a deliberately buggy server and on one that
cannot start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.grader import readme_chapter, show_reply, show_sent
from tests.support import CHAPTERS_DIR, ROOT, Exchange
from tools.progress import next_chapter


def test_replies_are_shown_as_redis_cli_shows_them():
    assert show_reply(b"+OK\r\n") == "OK"
    assert show_reply(b":3\r\n") == "(integer) 3"
    assert show_reply(b"$-1\r\n") == "(nil)"
    assert show_reply(b'$5\r\na\r\nb"\r\n') == '"a\\r\\nb\\""'
    assert show_reply(b"-ERR wrong\r\n") == "(error) ERR wrong"
    assert show_reply(b"*0\r\n") == "(empty array)"
    assert show_reply(b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n") == '1) "a"\n2) 1) (integer) 1'
    assert show_reply(b"%1\r\n$1\r\nk\r\n,1.5\r\n") == '1# "k" => (double) 1.5'
    assert show_reply(b":1\r\nextra") == "raw bytes b':1\\r\\nextra'"


def test_commands_are_shown_as_typed_and_framing_as_bytes():
    assert show_sent(Exchange(("SET", "k", "two words", b"\x00"))) == 'SET k "two words" "\\x00"'
    assert show_sent(Exchange(b"*1\r\n$4\r\nPI")) == "raw bytes '*1\\\\r\\\\n$4\\\\r\\\\nPI'"


def test_every_readme_marker_names_a_section_of_its_chapter(request: pytest.FixtureRequest):
    missing = set()
    for item in request.session.items:
        marker = item.get_closest_marker("readme")
        if marker is None:
            continue
        readme = next(CHAPTERS_DIR.glob(f"{readme_chapter(item):02d}_*")) / "README.md"
        if f"## {marker.args[0]}\n" not in readme.read_text():
            missing.add((item.module.__name__, marker.args[0], str(readme.relative_to(ROOT))))
    assert not missing, missing


def buggy_server(tmp_path: Path) -> Path:
    """Chapter 07 with a learner's bug: DEL counts keys that were not there."""
    source = (CHAPTERS_DIR / "07_key_value" / "server.py").read_text()
    buggy = source.replace(
        "        if keyspace.pop(key, None) is not None:\n            removed += 1",
        "        keyspace.pop(key, None)\n        removed += 1",
    ).replace("str(Path(__file__).resolve().parents[2])", repr(str(ROOT)))
    assert buggy.count("removed += 1") == 1 and repr(str(ROOT)) in buggy
    path = tmp_path / "my_server.py"
    path.write_text(buggy)
    return path


def grade(server: Path, chapter: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--chapter", str(chapter),
         "--server", f"python {server} --port {{port}}", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_buggy_server_gets_a_short_specific_report(tmp_path: Path):
    result = grade(buggy_server(tmp_path), 7, "tests/test_key_value.py", "--grader-json", str(tmp_path / "r.json"))
    report = result.stdout
    assert result.returncode == 1
    assert 'test_key_value.py::test_set_get_del[ch07]  (chapter 07, "Commands")' in report
    assert "sent       DEL test_set_get_del[ch07]:k test_set_get_del[ch07]:k test_set_get_del[ch07]:other" in report
    assert "expected   (integer) 1\n" in report and "received   (integer) 3\n" in report
    assert 'reread     chapters/07_key_value/README.md, section "Commands"' in report
    for internals in ("Traceback", "def test_", "<function", "fixture", "AssertionError", "_ _ _"):
        assert internals not in report, internals
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["failed"] == 1 and results["passed"] == results["total"] - 1
    assert results["findings"][0]["summary"].startswith("DEL test_set_get_del[ch07]:k")


def test_a_server_that_cannot_start_is_reported_once(tmp_path: Path):
    broken = tmp_path / "my_server.py"
    broken.write_text('print("starting"\n')
    result = grade(broken, 7)
    assert result.returncode != 0
    assert result.stdout.count("your server did not start") == 1
    assert "SyntaxError: '(' was never closed" in result.stdout
    assert " passed" not in result.stdout  # the run stopped there


def test_progress_names_the_first_failing_chapter_after_the_last_passing_one():
    passing, failing = {"failed": 0, "total": 5}, {"failed": 2, "total": 5}
    assert next_chapter({3: failing, 4: passing, 5: passing, 6: failing, 7: failing}) == 6
    assert next_chapter({3: failing, 4: failing}) == 3
    assert next_chapter({3: passing, 4: {"error": "did not start"}}) == 4
    assert next_chapter({3: passing, 4: passing}) is None
