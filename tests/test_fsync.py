"""Chapter 16 on: the fsync promises, seen in the server's own system calls.

kill -9 cannot tell whether a write reached the disk: the page cache
outlives the process, only a power cut would show it. So these tests
watch the calls instead, with strace attached to the running server (its
threads and the children it forks): appendfsync always fsyncs the AOF
before every reply that acknowledges a write, everysec about once a second,
no never from the loop; a snapshot or manifest is fsynced before it is
renamed into place, and the directory after, so the rename survives too.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import NO_SAVE_RULES as NO_RULES, ServerProcess, launch, require_tool

pytestmark = [pytest.mark.since(16), pytest.mark.heavy, pytest.mark.readme("Crash tests")]

# One line of `strace -f -y -qq`: "1234  fsync(7</dir/file>) = 0", or a rename with its two paths.
# A call another thread interrupts is split: "fsync(7</f> <unfinished ...>", later "<... fsync resumed>)".
CALL = re.compile(r"^\d+\s+(\w+)\((.*?)(?:\) += (-?\d+)| <unfinished \.\.\.>)")
DESCRIPTOR_PATH = re.compile(r"^\d+<([^>]*)>")


@dataclass
class Call:
    name: str  # fsync, fdatasync, rename, renameat, renameat2, sendto
    arguments: str

    @property
    def path(self) -> str:
        """The file an fsync names, or the target of a rename."""
        if self.name.startswith("rename"):
            return re.findall(r'"([^"]*)"', self.arguments)[-1]
        match = DESCRIPTOR_PATH.match(self.arguments)
        return match.group(1) if match else ""

    @property
    def is_sync(self) -> bool:
        return self.name in ("fsync", "fdatasync")


class Trace:
    """strace attached to a running server until stopped; `calls()` then lists what it saw."""

    def __init__(self, server: ServerProcess, log: Path, calls: str = "fsync,fdatasync,rename,renameat,renameat2,sendto") -> None:
        self.log = log
        self.pid = server.process.pid
        self.strace = subprocess.Popen(
            [require_tool("strace"), "-f", "-y", "-qq", "-s", "16", "-e", f"trace={calls}", "-o", str(log), "-p", str(self.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.attached():  # every thread of the server, or a call could go unseen
            assert self.strace.poll() is None, f"strace could not attach: {self.strace.stderr.read().decode()}"
            assert time.monotonic() < deadline, "strace did not attach within 10 s"
            time.sleep(0.02)

    def attached(self) -> bool:
        for status in Path(f"/proc/{self.pid}/task").glob("*/status"):
            if "TracerPid:\t0\n" in status.read_text():
                return False
        return True

    def calls(self) -> list[Call]:
        """Stop tracing (the server goes on) and parse what was seen."""
        self.strace.send_signal(signal.SIGINT)
        self.strace.wait(10)
        found = []
        for line in self.log.read_text().splitlines():
            match = CALL.match(line)
            if match and int(match.group(3) or 0) >= 0:  # an unfinished call counts as made
                found.append(Call(match.group(1), match.group(2)))
        return found


@pytest.fixture
def traced(server, tmp_path):
    """Start a server of the chapter under test on tmp_path with `args`, and strace on it."""
    require_tool("strace")
    started = []

    def start(*args: str) -> tuple[ServerProcess, Trace]:
        ours = launch(server, tmp_path, *NO_RULES, *args)
        started.append(ours)
        return ours, Trace(ours, tmp_path / f"strace-{len(started)}.log")

    yield start
    for ours in started:
        ours.stop()


def aof_syncs(calls: list[Call]) -> list[Call]:
    return [call for call in calls if call.is_sync and call.path.endswith(".incr.aof")]


def test_appendfsync_always_syncs_before_every_acknowledged_write(traced):
    ours, trace = traced("--appendonly", "yes", "--appendfsync", "always")
    with ours.connect() as client:
        for i in range(40):  # one at a time: each its own loop iteration
            assert client.command("SET", f"k{i}", "v") == b"+OK\r\n"
    calls = trace.calls()
    replies = [index for index, call in enumerate(calls) if call.name == "sendto" and '"+OK' in call.arguments]
    assert len(replies) == 40
    previous = 0
    for index in replies:
        synced = aof_syncs(calls[previous:index])
        assert synced, f"a write was acknowledged with no fsync of the AOF before it: {calls[previous:index + 1]}"
        previous = index


def test_appendfsync_everysec_syncs_about_once_a_second(traced):
    ours, trace = traced("--appendonly", "yes", "--appendfsync", "everysec")
    writes = 0
    with ours.connect() as client:
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            client.command("SET", f"k{writes}", "v")
            writes += 1
        time.sleep(1.2)  # the last second's writes get their fsync too
    synced = aof_syncs(trace.calls())
    assert writes > 100
    assert 2 <= len(synced) <= 6, f"{len(synced)} fsyncs of the AOF over 3.7 s of {writes} writes"


def test_appendfsync_no_leaves_syncing_to_the_kernel(traced):
    ours, trace = traced("--appendonly", "yes", "--appendfsync", "no")
    with ours.connect() as client:
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            client.command("SET", "k", "v")
        time.sleep(1.2)
    assert aof_syncs(trace.calls()) == []


def renames_into(calls: list[Call], target: Path) -> list[tuple[bool, bool]]:
    """Each rename of a temporary file to `target`: (was the temporary
    fsynced before it, was the directory fsynced after it)."""
    found = []
    for index, call in enumerate(calls):
        if call.name.startswith("rename") and call.path == str(target):
            source = re.findall(r'"([^"]*)"', call.arguments)[0]
            before = any(c.is_sync and c.path == source for c in calls[:index])
            after = any(c.is_sync and c.path == str(target.parent) for c in calls[index + 1 :])
            found.append((before, after))
    return found


def test_snapshots_and_manifests_are_synced_before_and_after_their_rename(traced, tmp_path):
    ours, trace = traced("--appendonly", "yes")
    with ours.redis() as client:
        client.set("k", "v")
        assert client.save()
        client.bgsave()  # its child's calls are traced too (strace -f)
        deadline = time.monotonic() + 15
        while client.info("persistence")["rdb_bgsave_in_progress"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.bgrewriteaof()
        while client.info("persistence")["aof_rewrite_in_progress"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    calls = trace.calls()
    assert renames_into(calls, tmp_path / "dump.rdb") == [(True, True)] * 2  # SAVE's, then BGSAVE's child's
    manifest = renames_into(calls, tmp_path / "appendonlydir" / "appendonly.aof.manifest")
    assert manifest and all(safe == (True, True) for safe in manifest)
