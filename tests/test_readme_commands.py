"""Every command a README tells the learner to run works as written.

Each ```sh block of README.md and of every chapter's README is run line by
line with bash, in the repository, after the README's own setup (.venv
exists: the test runs inside it). Lines are changed only where they must be:

- `make run-chapter N` and `python3 chapters/NN_*/server.py ...` start that
  server (on a free port, not 6379, so the run never meets another server);
  the lines after them talk to it: the port in redis-cli, redis-benchmark,
  nc and redis-py is rewritten, and redis-benchmark's request count cut;
- any other `make` line is checked with `make -n` (it would run the whole
  test suite, a benchmark or a long demo; CI runs those itself), which must
  succeed without a warning;
- a demo that measures for minutes is run with the option its README or
  docstring gives for a shorter run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CHAPTERS
from tests.support import require_tool
from tests.support import CHAPTERS_DIR, ROOT, ServerProcess, server_command

READMES = [ROOT / "README.md", *sorted(CHAPTERS_DIR.glob("*/README.md"))]
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
HEREDOC = re.compile(r"<<'(\w+)'\s*$")
LINE_TIMEOUT = 120  # seconds for one README line
# Lines that measure or test for minutes, run shorter (same code, smaller sizes).
SHORTER = {
    "make demo-chapter 5": "make demo-chapter 5 ARGS='--idle 50'",
    "make demo-chapter 8": "make demo-chapter 8 ARGS='--keys 20000'",
    "make demo-chapter 11": "make demo-chapter 11 ARGS='--members 20000'",
    "make demo-chapter 14": "make demo-chapter 14 ARGS='--members 20000'",
    "make demo-chapter 15": "make demo-chapter 15 ARGS='--connections 1000 --requests 5000'",
    "make demo-chapter 16": "make demo-chapter 16 ARGS='--keys 20000 --requests 2000 --rounds 1'",
    ".venv/bin/python tools/redis_suite.py redis": ".venv/bin/python tools/redis_suite.py redis --files unit/quit",
}


def commands(readme: Path) -> list[str]:
    """The commands of a README's sh blocks, a here-document kept whole."""
    found: list[str] = []
    for block in SH_BLOCK.findall(readme.read_text()):
        lines = block.splitlines()
        while lines:
            line = lines.pop(0)
            if not line.strip():
                continue
            if heredoc := HEREDOC.search(line):
                end = lines.index(heredoc.group(1))
                line = "\n".join([line, *lines[: end + 1]])
                del lines[: end + 1]
            found.append(line)
    return found


def for_port(line: str, port: int) -> str:
    """The line aimed at the server under test instead of 127.0.0.1:6379."""
    line = re.sub(r"\b6379\b", str(port), line)
    line = re.sub(r"(/client\.py)\b", rf"\1 --port {port}", line)
    line = re.sub(r"\bredis-cli\b", f"redis-cli -p {port}", line)
    line = re.sub(r"\bredis-benchmark\b", f"redis-benchmark -p {port}", line)
    line = re.sub(r"-n \d+", "-n 2000", line) if "redis-benchmark" in line else line
    return re.sub(r"redis\.Redis\(", f"redis.Redis(port={port}, ", line).replace(", )", ")")


def started_server(line: str) -> list[str] | None:
    """The server command a line starts, if it starts one."""
    words = shlex.split(line, comments=True)
    if words[:2] == ["make", "run-chapter"]:
        return server_command(CHAPTERS[int(words[2])])
    if len(words) > 1 and words[0] == "python3" and words[1].endswith("/server.py"):
        return [*server_command(ROOT / words[1]), *words[2:]]
    return None


def run(line: str) -> subprocess.CompletedProcess:
    """The line under bash, with .venv's python first on PATH (as after `source .venv/bin/activate`)."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line], cwd=ROOT, capture_output=True, text=True,
        timeout=LINE_TIMEOUT, stdin=subprocess.DEVNULL, env={**os.environ, "PATH": path},
    )  # fmt: skip


def readme_param(readme: Path):
    """One test per README, on its own chapter (README.md's commands use chapter 07)."""
    chapter = int(readme.parent.name[:2]) if readme.parent != ROOT else 7
    name = readme.parent.name if readme.parent != ROOT else "README"
    return pytest.param(readme, id=name, marks=[pytest.mark.since(chapter), pytest.mark.until(chapter)])


@pytest.mark.parametrize("readme", [readme_param(readme) for readme in READMES])
def test_readme_commands_work_as_written(readme: Path) -> None:
    for tool in ("redis-cli", "redis-benchmark", "nc"):
        require_tool(tool)
    server: ServerProcess | None = None
    try:
        for line in commands(readme):
            if (command := started_server(line)) is not None:
                if server is not None:
                    server.stop()
                server = ServerProcess(command[:2], tuple(command[2:]))
                continue
            words = shlex.split(line.splitlines()[0], comments=True)
            line = SHORTER.get(line.split("#")[0].strip(), line)
            if words and words[0] == "make" and words[1:2] != ["demo-chapter"]:
                line = line.replace("make ", "make -n ", 1)
            elif server is not None:
                line = for_port(line, server.port)
            result = run(line)
            assert result.returncode == 0, (
                f"{readme.relative_to(ROOT)}: `{line}` failed:\n{result.stdout}{result.stderr}"
            )
            if words and words[0] == "make":  # e.g. "Makefile:65: target '10' given more than once"
                assert "warning" not in result.stderr.lower() and "Makefile:" not in result.stderr, result.stderr
    finally:
        if server is not None:
            server.stop()
