"""Chapter 16's second lesson: the append-only file (AOF).

Every write command that changed something is appended, as RESP, to a log
replayed at start-up, in Redis 7's layout (common/aof.py): a manifest, an
RDB base and incremental files. The order is the lesson: a reply leaves
only after its command is in the file (chapter 14's loop writes the log in
before_sleep(), between executing and replying, as Redis's beforeSleep()
does), and `appendfsync` says when the kernel must put it on disk: always
(before replying), everysec (a worker thread, once a second) or no (when
the kernel likes). Relative times are logged as the absolute deadlines
they set, so a replay next week gives the same TTLs.

BGREWRITEAOF compacts the log: a child (snapshots.py's) writes a new base
snapshot while new writes go to a new incremental file, and one rename of
the manifest switches over.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.aof import AofError, AofTruncated, CommandReader, Manifest  # noqa: E402
from common.chapters import load_chapter, load_chapter_module  # noqa: E402
from common.net import error_text, fail, log  # noqa: E402
from common.rdb import MAGIC, RdbError, RdbReader  # noqa: E402
from common.resp import encode_command  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402

chapter14 = load_chapter(14)  # the keyspace, the command table, the worker pool
snapshots = load_chapter_module(16, "snapshots")  # the base is a snapshot, written by a child

EVERYSEC_MS = 1000
settings: snapshots.Settings  # set by configure()


def configure(chosen: snapshots.Settings) -> None:
    global settings
    settings = chosen


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
rewrite_scheduled = False  # BGREWRITEAOF asked for while another child ran
rewrites = 0  # begun (INFO aof_rewrites)
rewrites_consecutive_failures = 0


def relative_options_from(first: int) -> Callable[[list[bytes]], bool]:
    """A test for commands whose options may hold a relative EX or PX, from argument `first` on."""
    return lambda args: any(arg.lower() in (b"ex", b"px") for arg in args[first:])


# Commands whose effect depends on when they run: logged as the absolute
# deadline they set, as Redis does, so a replay next week gives the same
# TTL. For each: whether a call is relative, and where the value it sets
# is among its arguments (None: it sets none). A server with more such
# commands registers them here.
RELATIVE_TIME: dict[bytes, tuple[Callable[[list[bytes]], bool], int | None]] = {
    b"expire": (lambda args: True, None),
    b"pexpire": (lambda args: True, None),
    b"set": (relative_options_from(2), 1),
}
# Commands logged as something else, computed from their arguments (a list
# of commands; empty: nothing), registered likewise: a blocking command
# logs what it did when it did it, as Redis does.
LOGGED_AS: dict[bytes, Callable[[list[bytes]], list[list[bytes]]]] = {}
# What the command running now changed, in the form that replays it
# (Redis's server.also_propagate): it goes to the log as one unit once the
# outermost command is over (propagate_pending). A command that runs
# others and must be replayed whole (EXEC) may wrap it.
pending: list[list[bytes]] = []
# Who else takes each unit, as the commands that replay it: a server with
# replicas streams them (Redis's propagate() feeds the AOF and the
# replicas alike). Each says whether it takes units now; while neither the
# AOF nor any of them does, no write is put in replayable form.
unit_listeners: list[Any] = []  # objects with wants_units() -> bool and take_unit(commands)


def log_command(name: bytes, args: list[bytes]) -> None:
    """Add a write that changed something to the pending unit, in the form
    that replays to the same state. Each form is taken now: the state it
    reads is this command's, not the unit's end."""
    if loading or (aof is None and not any(listener.wants_units() for listener in unit_listeners)):
        return
    if name in LOGGED_AS:
        pending.extend(LOGGED_AS[name](args))
        return
    relative = RELATIVE_TIME.get(name)
    if relative is not None and relative[0](args):
        args = absolute_form(args, value_position=relative[1])
        if args is None:
            return
        name, args = args[0], args[1:]
    pending.append([name, *args])


def propagate_pending() -> None:
    """Append the pending unit to the log's buffer (after every command,
    chapter 14's after_command; and before the buffer is written)."""
    if not pending:
        return
    if aof is not None:
        for command in pending:
            aof.buffer += encode_command(*command)
    for listener in unit_listeners:
        if listener.wants_units():
            listener.take_unit(pending)
    pending.clear()


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


def flush_aof() -> None:
    """Write what was logged since the last call (once per loop iteration,
    before any reply to it is sent), and fsync as appendfsync says."""
    propagate_pending()
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
    snapshots.fsync_directory(settings.aof_dir)



# --- rewriting -----------------------------------------------------------------------


def bgrewriteaof(args: list[bytes], out: ReplyBuffer) -> None:
    global rewrite_scheduled
    if aof is None:
        out.error("ERR Background append only file rewriting is possible only with appendonly yes")
    elif snapshots.child is not None and snapshots.child.kind == "aof":
        out.error("ERR Background append only file rewriting already in progress")
    elif snapshots.child is not None or snapshots.inside_another_command():
        rewrite_scheduled = True
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
    global rewrites
    assert aof is not None
    flush_aof()
    if aof.unsynced:
        os.fsync(aof.descriptor)
        aof.unsynced = False
    os.close(aof.descriptor)
    aof.descriptor = open_incr(aof.manifest)
    new_incr = aof.manifest.incrs[-1]
    temporary = settings.aof_dir / f"temp-rewriteaof-bg-{os.getpid()}.aof"
    rewrites += 1
    started = snapshots.start_child("aof", temporary)
    if started is None:
        return False
    started.incr = new_incr
    return True


def start_scheduled_rewrite() -> bool:
    """Start the BGREWRITEAOF asked for while another child ran, if any."""
    global rewrite_scheduled
    if not rewrite_scheduled:
        return False
    rewrite_scheduled = False
    return start_aof_rewrite()


def finish_aof_rewrite(finished: snapshots.Child, ok: bool) -> None:
    """The child wrote the new base: rename it, and switch the manifest over."""
    global rewrites_consecutive_failures
    if not ok or aof is None or finished.incr is None:
        log.error("background AOF rewrite failed")
        finished.target.unlink(missing_ok=True)
        rewrites_consecutive_failures += 1
        return
    rewrites_consecutive_failures = 0
    base = aof.manifest.new_base(settings.appendfilename, keep_from=finished.incr)
    os.replace(finished.target, settings.aof_dir / base.name)
    write_manifest(aof.manifest)
    for old in aof.manifest.history:  # no longer listed but as history: delete them
        (settings.aof_dir / old.name).unlink(missing_ok=True)
    aof.manifest.history.clear()
    write_manifest(aof.manifest)
    log.info("background AOF rewrite done: base %s (%d kB copied on write)", base.name, snapshots.last_cow_size["aof"] // 1024)


snapshots.finish_child["aof"] = finish_aof_rewrite


# --- loading at start-up -----------------------------------------------------------------------


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
                snapshots.load_rdb_records(snapshot, str(path))
            except RdbError as error:
                fail(f"cannot load the AOF base {path}: {error}")
            offset = snapshot.pos
            file.seek(offset)
        reader = CommandReader(file, str(path), offset)
        # Redis writes a unit of several changes (a transaction) between
        # MULTI and EXEC: it is replayed when its EXEC is read, and a unit
        # the file ends in (a crash while writing it) is not replayed at all.
        unit: list[list[bytes]] | None = None
        unit_start = end = reader.valid_up_to
        count = 0
        try:
            for args in reader.commands():
                start, end = end, reader.valid_up_to
                name = args[0].lower()
                if name == b"multi" and unit is None:
                    unit, unit_start = [], start
                elif name == b"exec" and unit is not None:
                    count += replay_commands(unit, path, end)
                    unit = None
                elif unit is not None:
                    unit.append(args)
                else:
                    count += replay_commands([args], path, end)
            if unit is not None:
                raise AofTruncated(unit_start)
        except AofError as error:
            fail(str(error))
        except AofTruncated as error:
            if not last:
                fail(f"the AOF file {path} is truncated, and it is not the last one: {error}")
            cut = unit_start if unit is not None else error.valid_up_to
            log.warning("!!! the AOF file %s ends in the middle of a %s (a crash while writing it?): truncating it at "
                        "byte %d, after the last complete one", path, "MULTI/EXEC unit" if unit is not None else "command",
                        cut)  # fmt: skip
            os.truncate(path, cut)
        return count


def replay_commands(commands: list[list[bytes]], path: Path, end: int) -> int:
    """Run commands read from the AOF, as if a client sent them; any error stops the start."""
    scratch = ReplyBuffer()
    for args in commands:
        scratch.clear()
        chapter14.COMMANDS.process_command(args, scratch)
        if scratch[:1] == b"-":
            fail(f"the AOF file {path}, command ending at byte {end}, "
                 f"failed: {bytes(scratch).strip().decode(errors='replace')}")  # fmt: skip
    return len(commands)


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
        snapshots.write_snapshot(settings.aof_dir / base.name)
    if manifest.incrs:
        last = manifest.incrs[-1]
        descriptor = os.open(settings.aof_dir / last.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    else:
        descriptor = open_incr(manifest)  # lists it in the manifest, written to disk
    aof = AppendOnly(manifest, descriptor, bytearray(), last_fsync=time.monotonic())
    # Like Redis, name the database once at the start of what we append.
    aof.buffer += encode_command(b"SELECT", b"0")
