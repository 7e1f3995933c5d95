"""Chapter 16 (beyond the book): persistence, in Redis's own file formats.

Every earlier chapter forgets everything when it stops. Redis offers two
ways to keep the data, and this chapter builds both, writing files that
real Redis reads and reading files that real Redis writes:

* Snapshots (RDB, common/rdb.py). SAVE writes the whole keyspace to
  dump.rdb; BGSAVE does it in a forked child while the server goes on
  serving; `save <seconds> <changes>` rules start a BGSAVE by themselves.
  fork() gives the child a copy-on-write image of the parent: the pages
  are shared until one side writes to one. In C the child only reads,
  so little is copied. In Python even reading an object writes to it
  (its reference count), so the child copies every page it walks: INFO's
  rdb_last_cow_size reports how much, measured from the child's
  /proc/self/smaps_rollup.
* The append-only file (AOF, common/aof.py). Every write command that
  succeeds is appended, as RESP, to a log that is replayed at start-up.
  The order is the lesson: a reply leaves only after its command is in
  the file (the loop writes the log between executing and replying, as
  Redis's beforeSleep does), and `appendfsync` says when the kernel must
  put it on disk: always (before replying), everysec (a worker thread,
  once a second) or no (when the kernel likes). BGREWRITEAOF compacts the
  log: a child writes a new base snapshot while new writes go to a new
  incremental file, and one rename of the manifest switches over.

A file is never rewritten in place: snapshots and manifests go to a
temporary file, are fsynced and renamed over the old one, so a crash
leaves either the old file or the new one, never half of one.

Everything else is chapter 15's server, imported unchanged; the event
loop is chapter 15's with the AOF written before replies are sent.

    make run-chapter 16                                  # dump.rdb in the current directory
    .venv/bin/python chapters/16_persistence/server.py --appendonly yes --dir /tmp/data
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.aof import AofError, AofFile, AofTruncated, CommandReader, Manifest  # noqa: E402
from common.chapters import load_chapter  # noqa: E402
from common.commands import ERROR_MARK, CommandSpec  # noqa: E402
from common.net import RESERVED_FDS, Acceptor, error_text, fail, freeze_survivors, log, parse_options, raise_open_files_limit  # noqa: E402
from common.rdb import MAGIC, RdbError, RdbReader, RdbWriter  # noqa: E402
from common.resp import encode_command  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402
from common.zset import ZSet  # noqa: E402

chapter15 = load_chapter(15)  # the event loop this chapter extends
chapter14 = chapter15.chapter14  # the keyspace, commands and connection handlers

# Redis 7.0's default snapshot rules: after 3600 s if 1 key changed, 300 s
# if 100 did, 60 s if 10,000 did.
DEFAULT_SAVE = "3600 1 300 100 60 10000"
# While a child runs, the loop wakes at least this often to notice its end
# (Redis's serverCron runs 10 times a second).
CHILD_CHECK_MS = 100
EVERYSEC_MS = 1000

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


def write_rdb(path: Path) -> None:
    now = chapter14.now_ms()
    with open(path, "wb") as file:
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
                writer.sorted_set(entry.key, len(value), ((node.key, node.score) for node in value.nodes()), deadline)
        writer.end()
        file.flush()
        os.fsync(file.fileno())


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


def bgsave(args: list[bytes], out: ReplyBuffer) -> None:
    """BGSAVE [SCHEDULE]: snapshot in a forked child; the reply comes at once."""
    global bgsave_scheduled
    schedule = bool(args) and args[0].lower() == b"schedule"
    if args and (len(args) > 1 or not schedule):
        out.error("ERR syntax error")
    elif child is not None and child.kind == "rdb":
        out.error("ERR Background save already in progress")
    elif child is not None:
        if schedule:
            bgsave_scheduled = True
            out.simple("Background saving scheduled")
        else:
            out.error("ERR Another child process is active (AOF?): can't BGSAVE right now. "
                      "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")  # fmt: skip
    elif start_bgsave():
        out.simple("Background saving started")
    else:
        out.error("ERR Background save failed: fork() failed")


def start_bgsave() -> bool:
    changes = changes_since_save
    return start_child("rdb", settings.rdb_path, changes) is not None


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
    incr: AofFile | None = None  # aof: the incr file opened when the rewrite began


child: Child | None = None
bgsave_scheduled = False
aof_rewrite_scheduled = False
last_cow_size = {"rdb": 0, "aof": 0}  # bytes the last child of each kind copied
last_child_seconds = {"rdb": -1, "aof": -1}
last_child_ok = {"rdb": True, "aof": True}
latest_fork_usec = 0


def start_child(kind: str, target: Path, changes: int = 0) -> Child | None:
    """fork(): the child writes the snapshot `target` from its copy-on-write
    image of the keyspace, as it was at this instant, and exits; the parent goes on."""
    global child, last_save_attempt, latest_fork_usec
    if kind == "rdb":
        last_save_attempt = time.monotonic()
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
        run_child(lambda: write_snapshot(target), write_end)  # never returns
    os.close(write_end)
    # The parent stood still this long: fork() copies the page tables, in
    # proportion to the memory in use.
    latest_fork_usec = int((time.perf_counter() - forking) * 1e6)
    child = Child(pid, kind, time.monotonic(), target, read_end, changes)
    log.info("background %s started by pid %d", "saving" if kind == "rdb" else "AOF rewrite", pid)
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


def private_dirty_bytes() -> int:
    """The pages this process has written since fork(): its own copies (what Redis reports as COW)."""
    try:
        with open("/proc/self/smaps_rollup") as rollup:
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
    else:
        finish_aof_rewrite(finished, ok)


def remove_child_files(stopped: Child) -> None:
    """What a child stopped midway leaves behind: its temp-<pid>.rdb and,
    for a rewrite, the new base not yet renamed (Redis's rdbRemoveTempFile)."""
    temporary_snapshot(stopped.target, stopped.pid).unlink(missing_ok=True)
    if stopped.kind == "aof":
        stopped.target.unlink(missing_ok=True)


def start_scheduled_child() -> None:
    global bgsave_scheduled, aof_rewrite_scheduled
    if child is not None:
        return
    if aof_rewrite_scheduled:
        aof_rewrite_scheduled = False
        start_aof_rewrite()
    elif bgsave_scheduled:
        bgsave_scheduled = False
        start_bgsave()


# --- the append-only file ---------------------------------------------------------------


@dataclass
class AppendOnly:
    """The append-only file while the server runs."""

    manifest: Manifest
    descriptor: int  # the incr file being appended to
    buffer: bytearray  # logged writes not yet written to it
    unsynced: bool = False  # written since the last fsync
    last_fsync: float = 0.0  # monotonic
    fsync_running: bool = False  # an everysec fsync is on the worker thread
    write_error: str = ""


aof: AppendOnly | None = None
loading = False  # replaying the AOF: its commands are not logged again



def relative_options_from(first: int) -> Callable[[list[bytes]], bool]:
    """A test for commands whose options may hold a relative EX or PX, from argument `first` on."""
    return lambda args: any(arg.lower() in (b"ex", b"px") for arg in args[first:])


# Commands whose effect depends on when they run: logged as the absolute
# deadline they set, as Redis does, so a replay next week gives the same
# TTL. For each: whether a call is relative, and where the value it sets
# is among its arguments (None: it sets none). Chapter 17 adds its own.
RELATIVE_TIME: dict[bytes, tuple[Callable[[list[bytes]], bool], int | None]] = {
    b"expire": (lambda args: True, None),
    b"pexpire": (lambda args: True, None),
    b"set": (relative_options_from(2), 1),
}
# Commands logged as something else, computed from their arguments (a list
# of commands; empty: nothing). Chapter 17's blocking pops log the pop they
# did themselves, as ZPOPMIN or ZPOPMAX, as Redis does.
LOGGED_AS: dict[bytes, Callable[[list[bytes]], list[list[bytes]]]] = {}
# Called after every write command that succeeded, with its name and
# arguments (chapter 17 serves the clients blocked on the keys it fed).
after_write: list[Callable[[bytes, list[bytes]], None]] = []
# Once per loop iteration, after the requests and before the AOF is written:
# given the connections served so far, return more whose replies are ready
# (chapter 17: clients it unblocked). And when they need the loop to wake.
loop_steps: list[Callable[[list], list]] = []
wakeups: list[Callable[[], int | None]] = []
# Commands that reply 0 when they changed nothing: not a change, not logged.
ZERO_IS_NO_CHANGE = {b"expire", b"pexpire", b"expireat", b"pexpireat", b"persist", b"del", b"unlink", b"zrem"}


def log_write(name: bytes, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """Called after every write command that succeeded: count the change,
    and log it (not while replaying the log itself)."""
    global changes_since_save
    if loading:
        return
    if name in ZERO_IS_NO_CHANGE and out.startswith(b":0\r\n", reply_start):
        return
    if name == b"flushall" and settings.save_rules:
        # As Redis: an empty snapshot at once, or a restart before the next
        # BGSAVE would bring every key back.
        save_now()
    changes_since_save += 1
    if aof is None:
        return
    if name in LOGGED_AS:
        for command in LOGGED_AS[name](args):
            aof.buffer += encode_command(*command)
        return
    relative = RELATIVE_TIME.get(name)
    if relative is not None and relative[0](args):
        args = absolute_form(args, value_position=relative[1])
        if args is None:
            return
        name, args = args[0], args[1:]
    aof.buffer += encode_command(name, *args)


def absolute_form(args: list[bytes], value_position: int | None) -> list[bytes] | None:
    """The state a relative SET or EXPIRE left, as a command: PEXPIREAT (or
    SET ... PXAT) the deadline it set, DEL if it deleted the key, None if
    it changed nothing (SET NX on an existing key)."""
    key = args[0]
    entry = chapter14.keyspace.lookup(key)
    if entry is None:
        return [b"DEL", key]
    deadline = chapter14.deadline_of(key)
    if deadline is None:  # it set no TTL after all (GETEX of a missing key, ...)
        return None
    if value_position is not None:
        value = args[value_position]
        if entry.value is not value:  # not this command's value: NX or XX held it back
            return None
        return [b"SET", key, value, b"PXAT", b"%d" % deadline]
    return [b"PEXPIREAT", key, b"%d" % deadline]


def logged(name: bytes, function: Callable[[list[bytes], ReplyBuffer], None]) -> Callable:
    """`function`, a write command, refused while the data cannot be
    persisted, and logged once executed."""

    def run(args: list[bytes], out: ReplyBuffer) -> None:
        refusal = write_refusal()
        if refusal:
            out.error(refusal)
            return
        reply_start = len(out)
        function(args, out)
        # No reply yet (a client blocked, chapter 17) or an error: nothing happened.
        if len(out) > reply_start and out[reply_start] != ERROR_MARK:
            log_write(name, args, out, reply_start)
            for hook in after_write:
                hook(name, args)

    return run


def write_refusal() -> str:
    """Redis's MISCONF error while writes would not reach the disk, "" otherwise.

    Accepting writes the AOF cannot take would grow its buffer without
    bound and acknowledge what a restart loses; after a failed BGSAVE the
    snapshot is stale (Redis's stop-writes-on-bgsave-error yes)."""
    if aof is not None and aof.write_error:
        return f"MISCONF Errors writing to the AOF file: {aof.write_error}"
    if not last_bgsave_ok and settings.save_rules:
        return ("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
                "Commands that may modify the data set are disabled, because this instance is configured to report "
                "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check "
                "the Redis logs for details about the RDB error.")  # fmt: skip
    return ""


def flush_aof() -> None:
    """Write what was logged since the last call (once per loop iteration,
    before any reply to it is sent), and fsync as appendfsync says."""
    if aof is None or not write_aof() or not aof.unsynced:
        return
    if settings.appendfsync == "always":
        os.fsync(aof.descriptor)
        aof.unsynced = False
    elif settings.appendfsync == "everysec" and not aof.fsync_running:
        if (time.monotonic() - aof.last_fsync) * 1000 >= EVERYSEC_MS:
            # fsync can take long on a busy disk; a worker does it (it
            # releases the GIL while it waits) and the loop goes on.
            aof.unsynced, aof.fsync_running = False, True
            # A duplicate descriptor: a rewrite may close the original meanwhile.
            run_in_background(background_fsync, aof, os.dup(aof.descriptor))


def write_aof() -> bool:
    """write() the logged commands to the incr file. False if they could
    not all be written (disk full?): writes are refused until they are."""
    assert aof is not None
    if not aof.buffer:
        return True
    try:
        written = os.write(aof.descriptor, aof.buffer)
        del aof.buffer[:written]
        aof.unsynced = True
    except OSError as error:
        aof.write_error = error_text(error)
    if not aof.buffer:
        aof.write_error = ""
        return True
    aof.write_error = aof.write_error or os.strerror(errno.ENOSPC)  # a short write: Redis assumes a full disk too
    if settings.appendfsync == "always":
        # The replies are about to say OK: better stop than lie.
        log.critical("cannot write the AOF (%s) with appendfsync always: exiting", aof.write_error)
        os._exit(1)
    log.error("cannot write the AOF: %s; refusing writes, retrying", aof.write_error)
    return False


def background_fsync(state: AppendOnly, descriptor: int) -> None:
    try:
        os.fsync(descriptor)
    except OSError as error:
        log.error("background AOF fsync failed: %s", error_text(error))
    finally:
        os.close(descriptor)
    state.last_fsync = time.monotonic()
    state.fsync_running = False


def run_in_background(function: Callable, *args: object) -> None:
    if chapter14.worker_pool is not None:
        chapter14.worker_pool.submit(function, *args)
    else:  # --lazy-free-threshold 0 runs without the pool: do it here
        function(*args)


def open_incr(manifest: Manifest) -> int:
    """Create the next incr file, list it in the manifest, and return its descriptor."""
    entry = manifest.add_incr(settings.appendfilename)
    descriptor = os.open(settings.aof_dir / entry.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    write_manifest(manifest)
    return descriptor


def write_manifest(manifest: Manifest) -> None:
    path = settings.aof_dir / f"{settings.appendfilename}.manifest"
    temporary = path.with_name("temp-" + path.name)
    with open(temporary, "w") as file:
        file.write(manifest.render())
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(settings.aof_dir)


def bgrewriteaof(args: list[bytes], out: ReplyBuffer) -> None:
    global aof_rewrite_scheduled
    if aof is None:
        out.error("ERR Background append only file rewriting is possible only with appendonly yes")
    elif child is not None and child.kind == "aof":
        out.error("ERR Background append only file rewriting already in progress")
    elif child is not None:
        aof_rewrite_scheduled = True
        out.simple("Background append only file rewriting scheduled")
    elif start_aof_rewrite():
        out.simple("Background append only file rewriting started")
    else:
        out.error("ERR Can't execute an AOF background rewriting. Please check the server logs for more information.")


def start_aof_rewrite() -> bool:
    """New writes go to a new incr file from now on; a child writes the
    keyspace as it is now as a new base. Until the child is done, the
    manifest lists the old base, the old incr files and the new one, so a
    crash at any moment loses nothing."""
    assert aof is not None
    flush_aof()
    if aof.unsynced:
        os.fsync(aof.descriptor)
        aof.unsynced = False
    os.close(aof.descriptor)
    aof.descriptor = open_incr(aof.manifest)
    new_incr = aof.manifest.incrs[-1]
    temporary = settings.aof_dir / f"temp-rewriteaof-bg-{os.getpid()}.aof"
    started = start_child("aof", temporary)
    if started is None:
        return False
    started.incr = new_incr
    return True


def finish_aof_rewrite(finished: Child, ok: bool) -> None:
    """The child wrote the new base: rename it, and switch the manifest over."""
    if not ok or aof is None or finished.incr is None:
        log.error("background AOF rewrite failed")
        finished.target.unlink(missing_ok=True)
        return
    base = aof.manifest.new_base(settings.appendfilename, keep_from=finished.incr)
    os.replace(finished.target, settings.aof_dir / base.name)
    write_manifest(aof.manifest)
    for old in aof.manifest.history:  # no longer listed but as history: delete them
        (settings.aof_dir / old.name).unlink(missing_ok=True)
    aof.manifest.history.clear()
    write_manifest(aof.manifest)
    log.info("background AOF rewrite done: base %s (%d kB copied on write)", base.name, last_cow_size["aof"] // 1024)


# --- loading at start-up -----------------------------------------------------------------------


def load_rdb_records(reader: RdbReader, source: str) -> int:
    """Put every key of a dump into the keyspace (keys already expired are skipped, as Redis does)."""
    now = chapter14.now_ms()
    loaded = 0
    for record in reader.records():
        if record.expire_ms is not None and record.expire_ms <= now:
            continue
        if chapter14.keyspace.lookup(record.key) is not None:
            raise RdbError(f"{source}: key {record.key!r} appears twice")
        if isinstance(record.value, bytes):
            value: bytes | ZSet = record.value
        else:
            value = chapter14.SORTED_SETS.new_set()
            for member, score in record.value:
                value.add(member, score)
        entry = chapter14.Entry(record.key, value)
        chapter14.keyspace.insert(entry)
        if record.expire_ms is not None:
            chapter14.set_deadline(entry, record.expire_ms)
        loaded += 1
    return loaded


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


def load_aof() -> None:
    """Replay the append-only files in the manifest's order. A command cut
    short at the very end (a crash while writing it) is dropped with a
    warning, as Redis's aof-load-truncated yes; anything else malformed
    stops the start, naming the file and the byte."""
    global loading
    manifest_path = settings.aof_dir / f"{settings.appendfilename}.manifest"
    if not manifest_path.exists():
        return
    started = time.monotonic()
    try:
        manifest = Manifest.parse(manifest_path.read_text(), str(manifest_path))
    except (AofError, OSError, UnicodeDecodeError) as error:
        fail(f"cannot load the AOF: {error_text(error)}")
    files = manifest.replay_order()
    loading = True
    commands = 0
    try:
        for number, entry in enumerate(files):
            commands += replay(settings.aof_dir / entry.name, last=number == len(files) - 1)
    finally:
        loading = False
    log.info("replayed %d AOF commands from %d files in %.2f s", commands, len(files), time.monotonic() - started)


def replay(path: Path, last: bool) -> int:
    try:
        file = open(path, "rb")
    except OSError as error:
        fail(f"cannot open the AOF file {path}: {error_text(error)}")
    with file:
        offset = 0
        if file.peek(len(MAGIC))[: len(MAGIC)] == MAGIC:  # a base written as a snapshot (RDB preamble)
            snapshot = RdbReader(file.read(), verify_checksum=settings.rdbchecksum)
            try:
                load_rdb_records(snapshot, str(path))
            except RdbError as error:
                fail(f"cannot load the AOF base {path}: {error}")
            offset = snapshot.pos
            file.seek(offset)
        reader = CommandReader(file, str(path), offset)
        scratch = ReplyBuffer()
        count = 0
        try:
            for args in reader.commands():
                scratch.clear()
                chapter14.COMMANDS.execute(args, scratch)
                if scratch[:1] == b"-":
                    fail(f"the AOF file {path}, command ending at byte {reader.valid_up_to}, "
                         f"failed: {bytes(scratch).strip().decode(errors='replace')}")  # fmt: skip
                count += 1
        except AofError as error:
            fail(str(error))
        except AofTruncated as error:
            if not last:
                fail(f"the AOF file {path} is truncated, and it is not the last one: {error}")
            log.warning("!!! the AOF file %s ends in the middle of a command (a crash while writing it?): "
                        "truncating it at byte %d, after the last complete command", path, error.valid_up_to)  # fmt: skip
            os.truncate(path, error.valid_up_to)
        return count


def open_aof() -> None:
    """Start appending: to the last incr file, or, for a new AOF, after a
    base written from what is loaded (as Redis does on start)."""
    global aof
    settings.aof_dir.mkdir(exist_ok=True)
    manifest_path = settings.aof_dir / f"{settings.appendfilename}.manifest"
    if manifest_path.exists():
        manifest = Manifest.parse(manifest_path.read_text(), str(manifest_path))
    else:
        manifest = Manifest()
        base = manifest.new_base(settings.appendfilename)
        write_snapshot(settings.aof_dir / base.name)
    if manifest.incrs:
        last = manifest.incrs[-1]
        descriptor = os.open(settings.aof_dir / last.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    else:
        descriptor = open_incr(manifest)  # lists it in the manifest, written to disk
    aof = AppendOnly(manifest, descriptor, bytearray(), last_fsync=time.monotonic())
    # Like Redis, name the database once at the start of what we append.
    aof.buffer += encode_command(b"SELECT", b"0")


# --- the event loop ---------------------------------------------------------------------


def next_wakeup_ms() -> int | None:
    """Chapter 14's timers, and this chapter's: a running child, save rules, a pending fsync."""
    waits = [chapter14.next_timer_ms()]
    if child is not None:
        waits.append(CHILD_CHECK_MS)
    if settings.save_rules and changes_since_save:
        waits.append(1000)
    if aof is not None and (aof.unsynced or aof.buffer):
        waits.append(EVERYSEC_MS)
    waits += [wakeup() for wakeup in wakeups]
    waits = [wait for wait in waits if wait is not None]
    return min(waits) if waits else None


def run_event_loop(acceptor: Acceptor) -> None:
    listener = acceptor.listener
    listener.setblocking(False)
    clients: dict[int, chapter14.Connection] = {}
    chapter14.ADMIN.serve(acceptor, clients, count_cycles=True)
    with select.epoll() as epoll:
        epoll.register(listener, select.EPOLLIN)
        listener_fd = listener.fileno()
        while True:
            timeout_ms = next_wakeup_ms()
            ready = epoll.poll(None if timeout_ms is None else timeout_ms / 1000, chapter15.MAX_EVENTS)
            served = []
            for fd, events in ready:
                if fd == listener_fd:
                    chapter14.accept_clients(acceptor, epoll, clients)
                    continue
                conn = clients[fd]
                if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    chapter14.handle_readable(conn)  # executes requests; replies wait
                if events & select.EPOLLOUT and conn.outgoing:
                    chapter14.touch(conn)
                served.append(conn)
            for step in loop_steps:
                served += step(served)
            # The point of the chapter: the writes just executed reach the
            # file (and the disk, with appendfsync always) before any
            # client is told they succeeded.
            flush_aof()
            for conn in served:
                chapter14.send_replies(conn, epoll, clients)
            chapter14.close_idle_connections(epoll, clients)
            chapter14.expire_keys()
            reap_child()
            start_scheduled_child()
            check_save_rules()
            chapter14.ADMIN.eventloop_cycles += 1


# --- INFO, CONFIG, start and stop ---------------------------------------------------------------


def info_persistence() -> dict[str, object]:
    return {
        "loading": 0,
        "rdb_changes_since_last_save": changes_since_save,
        "rdb_bgsave_in_progress": int(child is not None and child.kind == "rdb"),
        "rdb_last_save_time": last_save_time,
        "rdb_last_bgsave_status": "ok" if last_child_ok["rdb"] else "err",
        "rdb_last_bgsave_time_sec": last_child_seconds["rdb"],
        "rdb_last_cow_size": last_cow_size["rdb"],
        "aof_enabled": int(aof is not None),
        "aof_rewrite_in_progress": int(child is not None and child.kind == "aof"),
        "aof_rewrite_scheduled": int(aof_rewrite_scheduled),
        "aof_last_rewrite_time_sec": last_child_seconds["aof"],
        "aof_last_bgrewrite_status": "ok" if last_child_ok["aof"] else "err",
        "aof_last_write_status": "err" if aof is not None and aof.write_error else "ok",
        "aof_last_cow_size": last_cow_size["aof"],
    }


def add_options(parser: argparse.ArgumentParser) -> None:
    chapter14.add_options(parser)
    parser.add_argument("--dir", default=".", help="where the files go (default: the current directory)")
    parser.add_argument("--dbfilename", default="dump.rdb", help="the snapshot's name (default: %(default)s)")
    parser.add_argument(
        "--save", default=DEFAULT_SAVE, metavar='"SECONDS CHANGES ..."',
        help='snapshot after SECONDS if CHANGES writes happened (default: "%(default)s"; "": never)',
    )  # fmt: skip
    parser.add_argument("--rdbchecksum", choices=("yes", "no"), default="yes",
                        help="write and check the snapshot's CRC-64 (default: %(default)s)")  # fmt: skip
    parser.add_argument("--appendonly", choices=("yes", "no"), default="no", help="keep an append-only file")
    parser.add_argument("--appendfsync", choices=("always", "everysec", "no"), default="everysec",
                        help="when to fsync it (default: %(default)s)")  # fmt: skip
    parser.add_argument("--appendfilename", default="appendonly.aof", help="its files' prefix")
    parser.add_argument("--appenddirname", default="appendonlydir", help="its directory, inside --dir")


def configure(options: argparse.Namespace) -> None:
    global settings
    rules = parse_save_rules(options.save)
    if rules is None:
        fail(f"invalid --save {options.save!r}: pairs of seconds and changes expected")
    directory = Path(options.dir).resolve()
    if not directory.is_dir():
        fail(f"--dir {options.dir}: no such directory")
    for name in (options.dbfilename, options.appendfilename, options.appenddirname):
        if os.path.basename(name) != name or name in ("", ".", ".."):
            fail(f"{name!r}: a file name is expected, not a path")
    settings = Settings(directory, options.dbfilename, rules, options.rdbchecksum == "yes",
                        options.appendonly == "yes", options.appendfsync, options.appendfilename,
                        options.appenddirname)  # fmt: skip
    chapter14.configure(options)
    for name, spec in chapter14.COMMANDS.commands.items():
        if "write" in spec.flags:
            spec.function = logged(name, spec.function)
    chapter14.COMMANDS.add(b"save", CommandSpec(save, 1, ("admin", "noscript", "no_async_loading", "no_multi")))
    chapter14.COMMANDS.add(b"bgsave", CommandSpec(bgsave, -1, ("admin", "noscript", "no_async_loading")))
    chapter14.COMMANDS.add(b"lastsave", CommandSpec(lastsave, 1, ("loading", "stale", "fast")))
    chapter14.COMMANDS.add(b"shutdown", CommandSpec(shutdown, -1, ("admin", "noscript", "loading", "stale", "no_multi")))
    chapter14.COMMANDS.add(b"bgrewriteaof", CommandSpec(bgrewriteaof, 1, ("admin", "noscript", "no_async_loading")))
    config = chapter14.ADMIN.config
    config.add("save", lambda: " ".join(f"{s} {c}" for s, c in settings.save_rules), set_save_rules)
    config.add("dir", lambda: settings.dir)
    config.add("dbfilename", lambda: settings.dbfilename)
    config.add("rdbchecksum", lambda: "yes" if settings.rdbchecksum else "no")
    config.add("appendonly", lambda: "yes" if settings.appendonly else "no")
    config.add("appendfsync", lambda: settings.appendfsync, set_appendfsync)
    config.add("appendfilename", lambda: settings.appendfilename)
    config.add("appenddirname", lambda: settings.appenddirname)
    config.add("aof-use-rdb-preamble", lambda: "yes")
    config.add("aof-load-truncated", lambda: "yes")
    chapter14.ADMIN.extra_info["persistence"] = [info_persistence]
    chapter14.ADMIN.extra_info["stats"] = [lambda: {"latest_fork_usec": latest_fork_usec}]


def set_save_rules(text: bytes) -> str | None:
    rules = parse_save_rules(text.decode(errors="replace"))
    if rules is None:
        return "Invalid save parameters"
    settings.save_rules = rules
    return None


def set_appendfsync(text: bytes) -> str | None:
    value = text.decode(errors="replace").lower()
    if value not in ("always", "everysec", "no"):
        return "argument(s) must be one of the following: always, everysec, no"
    settings.appendfsync = value
    return None


save_on_exit: bool | None = None  # None: if there are save rules; SHUTDOWN SAVE/NOSAVE decide otherwise


def shutdown(args: list[bytes], out: ReplyBuffer) -> None:
    """SHUTDOWN [NOSAVE | SAVE]: save if there are save rules (or SAVE,
    not with NOSAVE), then exit. Success has no reply: the connection
    closes. If the snapshot fails the server stays up, as in Redis."""
    global save_on_exit
    option = args[0].lower() if args else b""
    if len(args) > 1 or option not in (b"", b"save", b"nosave"):
        out.error("ERR syntax error")
        return
    if (option == b"save" or (option == b"" and settings.save_rules)) and not save_now():
        out.error("ERR Errors trying to SHUTDOWN. Check logs.")
        return
    save_on_exit = False  # saved already, or NOSAVE
    log.info("SHUTDOWN from a client")
    raise KeyboardInterrupt  # unwinds the event loop, as SIGTERM does (common/net.py's serve)


def shut_down() -> None:
    """On exit (SIGTERM, Ctrl-C, SHUTDOWN), as Redis: stop a running child,
    flush and fsync the AOF, and save a snapshot if save rules are set."""
    if child is not None:
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
        remove_child_files(child)
    if aof is not None:
        write_aof()  # and fsync here: the worker pool is gone
        os.fsync(aof.descriptor)
        os.close(aof.descriptor)
    if save_on_exit if save_on_exit is not None else settings.save_rules:
        log.info("saving the snapshot before exiting")
        write_snapshot(settings.rdb_path)


def main() -> None:
    run(parse_options("Chapter 16: persistence, RDB and AOF", add_options, client_limits=True))


def run(options: argparse.Namespace) -> None:
    """Load the data, serve until stopped, persist on the way out (chapter 17 calls this too)."""
    raise_open_files_limit(options.maxclients + RESERVED_FDS)
    configure(options)
    # Loading makes a million objects: without this, Python's cyclic
    # collector would walk all those already loaded, again and again
    # (twice the loading time, measured). serve() would install it later.
    freeze_survivors()
    if settings.appendonly:
        load_aof()
        open_aof()
    else:
        load_snapshot()
    try:
        chapter14.serve_with(run_event_loop, options)
    finally:
        shut_down()


if __name__ == "__main__":
    main()
