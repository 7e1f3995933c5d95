"""Chapter 16's first lesson: snapshots (RDB) and the forked child that writes them.

SAVE writes the whole keyspace to dump.rdb (common/rdb.py, Redis 7.0's
format) while every client waits; BGSAVE forks a child that writes it
while the parent goes on serving; `save <seconds> <changes>` rules start
a BGSAVE by themselves. A snapshot goes to temp-<pid>.rdb, is fsynced,
renamed over dump.rdb, and the directory fsynced: a crash leaves the old
file or the new one, never half of one.

fork() gives the child a copy-on-write image of the parent: the pages are
shared until one side writes to one. In C the child only reads, so little
is copied. In Python even reading an object writes to it (its reference
count), so the child copies every page it walks: INFO's rdb_last_cow_size
reports how much, measured from the child's /proc/self/smaps_rollup.

The append-only file (append_only.py) uses the same children to rewrite
its base; server.py wires both into chapter 14's loop.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.net import error_text, fail, log  # noqa: E402
from common.rdb import RdbError, RdbReader, RdbWriter  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402
from common.zset import ZSet  # noqa: E402

chapter14 = load_chapter(14)  # the keyspace


# --- settings ------------------------------------------------------------------------


@dataclass
class Settings:
    """Where and when to persist, by Redis's configuration names."""

    dir: Path
    dbfilename: str
    save_rules: list[tuple[int, int]]  # (seconds, changes)
    rdbchecksum: bool
    appendonly: bool
    appendfsync: str  # always | everysec | no
    appendfilename: str
    appenddirname: str

    @property
    def rdb_path(self) -> Path:
        return self.dir / self.dbfilename

    @property
    def aof_dir(self) -> Path:
        return self.dir / self.appenddirname


def parse_save_rules(text: str) -> list[tuple[int, int]] | None:
    """ "3600 1 300 100" -> [(3600, 1), (300, 100)]; "" -> []; None if malformed."""
    words = text.split()
    if len(words) % 2 or not all(word.isascii() and word.isdigit() and len(word) <= 18 for word in words):
        return None
    return [(int(seconds), int(changes)) for seconds, changes in zip(words[0::2], words[1::2])]


settings: Settings  # set by configure()


def configure(chosen: Settings) -> None:
    global settings
    settings = chosen

# --- snapshots -----------------------------------------------------------------------

changes_since_save = 0  # writes since the last successful save (INFO rdb_changes_since_last_save)
last_save_time = int(time.time())  # LASTSAVE: Unix time of the last successful save
last_bgsave_ok = True
last_save_attempt = 0.0  # monotonic time of the last save rule's attempt


def write_snapshot(path: Path) -> None:
    """Write the keyspace to `path` as an RDB file, atomically: a temporary
    file, fsynced, then renamed over `path`, then the directory fsynced
    (so the rename itself survives a power cut)."""
    temporary = temporary_snapshot(path, os.getpid())
    try:
        write_rdb(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def temporary_snapshot(path: Path, pid: int) -> Path:
    """Where process `pid` writes a snapshot before renaming it to `path` (Redis's temp-<pid>.rdb)."""
    return path.with_name(f"temp-{pid}.rdb")


# How a snapshot holds each type of collection, by its TYPE name: written
# from a value, and built from what common/rdb.py read. A server with more
# types registers theirs.
VALUE_WRITERS: dict[bytes, Callable[[RdbWriter, bytes, Any, int | None], None]] = {
    b"zset": lambda writer, key, zset, deadline: writer.sorted_set(
        key, len(zset), ((node.key, node.score) for node in zset.nodes()), deadline),
}  # fmt: skip
VALUE_BUILDERS: dict[bytes, Callable[[Any], Any]] = {}  # filled below, once load_sorted_set exists


def write_rdb(path: Path) -> None:
    with open(path, "wb") as file:
        write_rdb_to(file)
        file.flush()
        os.fsync(file.fileno())


def write_rdb_to(file: Any) -> None:
    """The keyspace as an RDB, to a file or a pipe (a snapshot sent to a replica as it is made)."""
    now = chapter14.now_ms()
    writer = RdbWriter(file, checksum=settings.rdbchecksum)
    writer.begin(len(chapter14.keyspace), len(chapter14.expires))
    for entry in chapter14.keyspace:
        deadline = chapter14.deadline_of(entry.key)
        if deadline is not None and deadline <= now:
            continue  # expired, only not deleted yet
        value = entry.value
        if type(value) is bytes:
            writer.string(entry.key, value, deadline)
        else:
            VALUE_WRITERS[value.type_name](writer, entry.key, value, deadline)
    writer.end()


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save(args: list[bytes], out: ReplyBuffer) -> None:
    """SAVE: write the snapshot now, in the event loop; every client waits."""
    if child is not None and child.kind == "rdb":
        out.error("ERR Background save already in progress")
    elif save_now():
        out.simple("OK")
    else:
        out.error("ERR")


def save_now() -> bool:
    """Write the snapshot in the event loop; False (and logged) if it failed."""
    global rdb_saves
    rdb_saves += 1
    try:
        write_snapshot(settings.rdb_path)
    except OSError as error:
        log.error("saving %s failed: %s", settings.rdb_path, error_text(error))
        return False
    saved(changes_since_save)
    return True


def saved(changes_included: int) -> None:
    """A snapshot holding the first `changes_included` changes is on disk."""
    global changes_since_save, last_save_time, last_bgsave_ok
    changes_since_save -= changes_included
    last_save_time = int(time.time())
    last_bgsave_ok = True


def note_change(name: bytes, count: int = 1) -> None:
    """A write changed the keyspace: one more change toward the save rules
    (`count` more: writes counted together). FLUSHALL saves at once, as
    Redis does, if there are rules: a restart before the next BGSAVE would
    otherwise bring every key back."""
    global changes_since_save
    if name == b"flushall" and settings.save_rules:
        save_now()
    changes_since_save += count


def bgsave(args: list[bytes], out: ReplyBuffer) -> None:
    """BGSAVE [SCHEDULE]: snapshot in a forked child; the reply comes at once."""
    global bgsave_scheduled
    schedule = bool(args) and args[0].lower() == b"schedule"
    in_exec = inside_another_command()
    if args and (len(args) > 1 or not schedule):
        out.error("ERR syntax error")
    elif child is not None and child.kind == "rdb":
        out.error("ERR Background save already in progress")
    elif child is not None or in_exec:
        if schedule or in_exec:
            bgsave_scheduled = True
            out.simple("Background saving scheduled")
        else:
            out.error("ERR Another child process is active (AOF?): can't BGSAVE right now. "
                      "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")  # fmt: skip
    elif start_bgsave():
        out.simple("Background saving started")
    else:
        out.error("ERR Background save failed: fork() failed")


def inside_another_command() -> bool:
    """Run by a command that runs others (Redis's in_exec): a child forked
    now would catch their changes halfway, so it is only scheduled."""
    return chapter14.COMMANDS.nesting > 1


def start_bgsave() -> bool:
    changes = changes_since_save
    return start_child("rdb", settings.rdb_path, changes) is not None


def start_scheduled_bgsave() -> bool:
    """Start the BGSAVE SCHEDULE asked for while another child ran, if any."""
    global bgsave_scheduled
    if not bgsave_scheduled:
        return False
    bgsave_scheduled = False
    return start_bgsave()


def lastsave(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(last_save_time)


def check_save_rules() -> None:
    """Start a BGSAVE if a rule is met: `seconds` since the last save and at
    least `changes` writes. After a failed attempt, wait 5 s (as Redis)."""
    if child is not None or not changes_since_save:
        return
    elapsed = time.time() - last_save_time
    if not last_bgsave_ok and time.monotonic() - last_save_attempt < 5:
        return
    for seconds, changes in settings.save_rules:
        if changes_since_save >= changes and elapsed >= seconds:
            log.info("%d changes in %d seconds: saving", changes, seconds)
            start_bgsave()
            return


# --- forked children ------------------------------------------------------------------


@dataclass
class Child:
    """The one background child, as in Redis: a BGSAVE or a BGREWRITEAOF."""

    pid: int
    kind: str  # "rdb" or "aof"
    started: float  # monotonic
    target: Path  # the snapshot it writes (through temporary_snapshot(target, pid))
    report: int  # the read end of a pipe: the child writes how much memory it copied
    changes: int  # changes_since_save when it forked (what the snapshot holds)
    keys: int  # keys when it forked: what it writes
    incr: Any = None  # aof: the incr file opened when the rewrite began


child: Child | None = None
bgsave_scheduled = False
last_cow_size = {"rdb": 0, "aof": 0}  # bytes the last child of each kind copied
last_child_seconds = {"rdb": -1, "aof": -1}
last_child_ok = {"rdb": True, "aof": True}
latest_fork_usec = 0
# INFO's counters: snapshots begun (SAVE or a child), forks, what the last load read.
rdb_saves = 0
total_forks = 0
load_keys_loaded = 0
load_keys_expired = 0
# What to do when a child of another kind than "rdb" ends, by kind
# (append_only.py registers the end of an AOF rewrite).
finish_child: dict[str, Callable[[Child, bool], None]] = {}
# Told when a background save ends, and whether it succeeded (a server with
# replicas sends them the snapshot).
after_bgsave: list[Callable[[bool], None]] = []


def start_child(kind: str, target: Path, changes: int = 0, work: Callable[[], None] | None = None) -> Child | None:
    """fork(): the child writes the snapshot `target` (or does `work`) from
    its copy-on-write image of the keyspace, as it was at this instant, and
    exits; the parent goes on."""
    global child, last_save_attempt, latest_fork_usec, rdb_saves, total_forks
    if kind == "rdb":
        last_save_attempt = time.monotonic()
        rdb_saves += 1
    read_end, write_end = os.pipe()
    forking = time.perf_counter()
    try:
        pid = os.fork()
    except OSError as error:
        log.error("fork() failed: %s", error_text(error))
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        run_child(work or (lambda: write_snapshot(target)), write_end)  # never returns
    os.close(write_end)
    # The parent stood still this long: fork() copies the page tables, in
    # proportion to the memory in use.
    latest_fork_usec = int((time.perf_counter() - forking) * 1e6)
    total_forks += 1
    child = Child(pid, kind, time.monotonic(), target, read_end, changes, len(chapter14.keyspace))
    log.info("background %s started by pid %d", {"rdb": "saving", "aof": "AOF rewrite"}.get(kind, kind), pid)
    return child


def run_child(work: Callable[[], None], report: int) -> None:
    # The parent's handlers would turn SIGTERM into a KeyboardInterrupt that
    # unwinds into the parent's event loop, inside the child: die instead.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The cyclic collector would walk (and so write to, and copy) every object.
    gc.disable()
    status = 1
    try:
        work()
        status = 0
    except OSError as error:  # the disk's fault, not a bug: no traceback
        log.error("the background child failed: %s", error_text(error))
    except BaseException:
        log.exception("the background child failed")
    finally:
        try:
            os.write(report, b"%d" % private_dirty_bytes())
        finally:
            os._exit(status)  # no cleanup: the parent's sockets and files are not ours to flush


def private_dirty_bytes(pid: int | str = "self") -> int:
    """The pages a process has written since fork(): its own copies (what
    Redis reports as COW). The parent may ask about its child, by pid."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reap_child() -> None:
    """If the child has exited, collect it and finish its work."""
    global child, last_bgsave_ok
    if child is None:
        return
    pid, status = os.waitpid(child.pid, os.WNOHANG)
    if pid == 0:
        return
    finished, child = child, None
    ok = os.waitstatus_to_exitcode(status) == 0
    with os.fdopen(finished.report, "rb") as report:
        copied = report.read()
    last_cow_size[finished.kind] = int(copied) if copied.isdigit() else 0
    last_child_seconds[finished.kind] = round(time.monotonic() - finished.started)
    last_child_ok[finished.kind] = ok
    if not ok:  # killed by a signal, it could not clean up after itself
        remove_child_files(finished)
    if finished.kind == "rdb":
        if ok:
            saved(finished.changes)
        else:
            last_bgsave_ok = False
        log.info("background saving %s (%d kB copied on write)", "done" if ok else "FAILED", last_cow_size["rdb"] // 1024)
        for listener in after_bgsave:
            listener(ok)
    else:
        finish_child[finished.kind](finished, ok)


def stop_child(tell: bool = False) -> None:
    """Kill the running child, if any, and remove what it leaves (on the
    way out; a replica about to replace the data it saves). With `tell`,
    whoever waits for its work learns it failed, as reap_child() would
    tell them; stopped on purpose, it is no failed save (Redis's SIGUSR1)."""
    global child
    stopped = child
    if stopped is None:
        return
    try:
        os.kill(stopped.pid, signal.SIGKILL)
        os.waitpid(stopped.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass  # the stop came while reap_child() collected it: gone already
    child = None
    os.close(stopped.report)
    remove_child_files(stopped)
    if not tell:
        return
    if stopped.kind == "rdb":
        for listener in after_bgsave:
            listener(False)
    else:
        finish_child[stopped.kind](stopped, False)


def remove_child_files(stopped: Child) -> None:
    """What a child stopped midway leaves behind: its temp-<pid>.rdb and,
    for a rewrite, the new base not yet renamed (Redis's rdbRemoveTempFile)."""
    temporary_snapshot(stopped.target, stopped.pid).unlink(missing_ok=True)
    if stopped.kind == "aof":
        stopped.target.unlink(missing_ok=True)


# --- loading at start-up -----------------------------------------------------------------------


def load_rdb_records(reader: RdbReader, source: str, keep_expired: bool = False) -> int:
    """Put every key of a dump into the keyspace. Keys already expired are
    skipped, as Redis does, unless `keep_expired` (a replica keeps them
    until its master deletes them)."""
    global load_keys_loaded, load_keys_expired
    now = chapter14.now_ms()
    loaded = load_keys_expired = 0
    for record in reader.records():
        if record.expire_ms is not None and record.expire_ms <= now and not keep_expired:
            load_keys_expired += 1
            continue
        if chapter14.keyspace.lookup(record.key) is not None:
            raise RdbError(f"{source}: key {record.key!r} appears twice")
        if record.type_name != b"string" and record.type_name not in VALUE_BUILDERS:
            # Read, but not a type this server has (a list before chapter 20): not starting beats losing it.
            raise RdbError(f"{source}: key {record.key!r} is a {record.type_name.decode()}, "
                           "a type this server does not have")  # fmt: skip
        value = record.value if record.type_name == b"string" else VALUE_BUILDERS[record.type_name](record.value)
        entry = chapter14.Entry(record.key, value)
        chapter14.keyspace.insert(entry)
        if record.expire_ms is not None:
            chapter14.set_deadline(entry, record.expire_ms)
        loaded += 1
    load_keys_loaded = loaded
    return loaded


def load_sorted_set(items: list[tuple[bytes, float]]) -> ZSet:
    zset = chapter14.SORTED_SETS.new_set()
    for member, score in items:
        zset.add(member, score)
    return zset


VALUE_BUILDERS[b"zset"] = load_sorted_set


def load_snapshot() -> None:
    path = settings.rdb_path
    if not path.exists():
        return
    started = time.monotonic()
    try:
        reader = RdbReader(path.read_bytes(), verify_checksum=settings.rdbchecksum)
        loaded = load_rdb_records(reader, str(path))
    except (RdbError, OSError) as error:
        fail(f"cannot load {path}: {error_text(error)}")
    log.info("loaded %d keys from %s in %.2f s", loaded, path, time.monotonic() - started)
