"""Chapter 16 (beyond the book): persistence, in Redis's own file formats.

Every earlier chapter forgets everything when it stops. Redis offers two
ways to keep the data, and this chapter builds both, writing files that
real Redis reads and reading files that real Redis writes:

* Snapshots (RDB, common/rdb.py; snapshots.py). SAVE writes the whole keyspace to
  dump.rdb; BGSAVE does it in a forked child while the server goes on
  serving; `save <seconds> <changes>` rules start a BGSAVE by themselves.
  fork() gives the child a copy-on-write image of the parent: the pages
  are shared until one side writes to one. In C the child only reads,
  so little is copied. In Python even reading an object writes to it
  (its reference count), so the child copies every page it walks: INFO's
  rdb_last_cow_size reports how much, measured from the child's
  /proc/self/smaps_rollup.
* The append-only file (AOF, common/aof.py; append_only.py). Every write command that
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

Each lesson is a file of this folder; this one wires them into chapter
15's server, imported unchanged, through chapter 14's seams: a check
before every command (writes refused while they cannot be kept), a
listener after it (count the change, log it), the AOF written in
before_sleep() before any reply goes out, the children reaped in
server_cron(). And the Redis glue: INFO persistence, CONFIG, SHUTDOWN.

    make run-chapter 16                                  # dump.rdb in the current directory
    .venv/bin/python chapters/16_persistence/server.py --appendonly yes --dir /tmp/data
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter, load_chapter_module  # noqa: E402
from common.commands import CommandSpec  # noqa: E402
from common.net import RESERVED_FDS, fail, freeze_survivors, log, parse_options, raise_open_files_limit  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402

chapter15 = load_chapter(15)  # the server on epoll that this chapter extends
chapter14 = chapter15.chapter14  # the keyspace, the command table, the event loop
snapshots = load_chapter_module(16, "snapshots")
append_only = load_chapter_module(16, "append_only")

# Redis 7.0's default snapshot rules: after 3600 s if 1 key changed, 300 s
# if 100 did, 60 s if 10,000 did.
DEFAULT_SAVE = "3600 1 300 100 60 10000"
# While a child runs, the loop wakes at least this often to notice its end
# (Redis's serverCron runs 10 times a second).
CHILD_CHECK_MS = 100

settings: snapshots.Settings  # set by configure()


# --- around every command: Redis's processCommand() and call() -------------------------

# Commands that reply 0 when they changed nothing: not a change, not logged.
ZERO_IS_NO_CHANGE = {b"expire", b"pexpire", b"expireat", b"pexpireat", b"persist", b"del", b"unlink", b"zrem"}


def refuse_writes(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Refuse a write, with Redis's MISCONF error, while writes would not
    reach the disk (True: refused).

    Accepting writes the AOF cannot take would grow its buffer without
    bound and acknowledge what a restart loses; after a failed BGSAVE the
    snapshot is stale (Redis's stop-writes-on-bgsave-error yes)."""
    aof = append_only.aof
    if aof is not None and aof.write_error:
        out.error(f"MISCONF Errors writing to the AOF file: {aof.write_error}")
        return True
    if not snapshots.last_bgsave_ok and settings.save_rules:
        out.error("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
                  "Commands that may modify the data set are disabled, because this instance is configured to report "
                  "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check "
                  "the Redis logs for details about the RDB error.")  # fmt: skip
        return True
    return False


def after_write(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """A write that changed something counts toward the save rules and is
    logged (not while the log itself is replayed). No reply (its client
    blocked): nothing happened yet."""
    if append_only.loading or len(out) == reply_start:
        return
    if name in ZERO_IS_NO_CHANGE and out.startswith(b":0\r\n", reply_start):
        return
    snapshots.note_change(name)
    append_only.log_command(name, args)


# Who else hears of a change made outside any command, as the command
# that replays it (a server with WATCH touches its keys).
propagate_listeners: list[Callable[[list[bytes]], None]] = []


def propagate(command: list[bytes]) -> None:
    """A change made outside any command (a blocked client served once
    the command that fed it is over): counted and logged as `command`, a
    unit of its own."""
    for listener in propagate_listeners:
        listener(command)
    if append_only.loading:
        return
    snapshots.note_change(command[0].lower())
    append_only.log_command(command[0], command[1:])
    append_only.propagate_pending()


# --- the loop: children and timers -----------------------------------------------------


def start_scheduled_child() -> None:
    """A BGREWRITEAOF or BGSAVE asked for while another child ran starts now."""
    if snapshots.child is None:
        append_only.start_scheduled_rewrite() or snapshots.start_scheduled_bgsave()


def next_wakeup_ms() -> int | None:
    """How long the loop may sleep for this chapter: a running child, save rules, a pending fsync."""
    waits = []
    if snapshots.child is not None:
        waits.append(CHILD_CHECK_MS)
    if settings.save_rules and snapshots.changes_since_save:
        waits.append(1000)
    aof = append_only.aof
    if aof is not None and (aof.unsynced or aof.buffer):
        waits.append(append_only.EVERYSEC_MS)
    return min(waits) if waits else None


chapter14.COMMANDS.write_checks.append(refuse_writes)
chapter14.COMMANDS.after_write.append(after_write)
chapter14.COMMANDS.after_command.append(append_only.propagate_pending)
# The point of the chapter: the writes just executed reach the file (and
# the disk, with appendfsync always) before any client is told they succeeded.
chapter14.before_replies.append(append_only.flush_aof)
chapter14.cron_tasks.extend([snapshots.reap_child, start_scheduled_child, snapshots.check_save_rules])
chapter14.timers.append(next_wakeup_ms)


# --- INFO, CONFIG, start and stop: the Redis glue ---------------------------------------------------


def info_persistence() -> dict[str, object]:
    """INFO's persistence fields, in Redis's order. The child's copy-on-write
    size is read from its /proc entry when asked; how many keys it has
    written it does not report (Redis's child does, through a pipe), so
    current_save_keys_processed stays 0."""
    global current_cow_peak
    child, aof = snapshots.child, append_only.aof
    copied = snapshots.private_dirty_bytes(child.pid) if child is not None else 0
    current_cow_peak = max(current_cow_peak, copied) if child is not None else 0
    running = {kind: child is not None and child.kind == kind for kind in ("rdb", "aof")}
    return {
        "loading": 0,
        "async_loading": 0,
        "current_cow_peak": current_cow_peak,
        "current_cow_size": copied,
        "current_cow_size_age": 0,  # read just now
        "current_fork_perc": "0.00",
        "current_save_keys_processed": 0,
        "current_save_keys_total": child.keys if child is not None else 0,
        "rdb_changes_since_last_save": snapshots.changes_since_save,
        "rdb_bgsave_in_progress": int(running["rdb"]),
        "rdb_last_save_time": snapshots.last_save_time,
        "rdb_last_bgsave_status": "ok" if snapshots.last_child_ok["rdb"] else "err",
        "rdb_last_bgsave_time_sec": snapshots.last_child_seconds["rdb"],
        "rdb_current_bgsave_time_sec": child_seconds(child) if running["rdb"] else -1,
        "rdb_saves": snapshots.rdb_saves,
        "rdb_last_cow_size": snapshots.last_cow_size["rdb"],
        "rdb_last_load_keys_expired": snapshots.load_keys_expired,
        "rdb_last_load_keys_loaded": snapshots.load_keys_loaded,
        "aof_enabled": int(aof is not None),
        "aof_rewrite_in_progress": int(running["aof"]),
        "aof_rewrite_scheduled": int(append_only.rewrite_scheduled),
        "aof_last_rewrite_time_sec": snapshots.last_child_seconds["aof"],
        "aof_current_rewrite_time_sec": child_seconds(child) if running["aof"] else -1,
        "aof_last_bgrewrite_status": "ok" if snapshots.last_child_ok["aof"] else "err",
        "aof_rewrites": append_only.rewrites,
        "aof_rewrites_consecutive_failures": append_only.rewrites_consecutive_failures,
        "aof_last_write_status": "err" if aof is not None and aof.write_error else "ok",
        "aof_last_cow_size": snapshots.last_cow_size["aof"],
    }


current_cow_peak = 0  # the most the running child has copied, as seen by INFO


def child_seconds(child: snapshots.Child) -> int:
    return round(time.monotonic() - child.started)


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
    rules = snapshots.parse_save_rules(options.save)
    if rules is None:
        fail(f"invalid --save {options.save!r}: pairs of seconds and changes expected")
    directory = Path(options.dir).resolve()
    if not directory.is_dir():
        fail(f"--dir {options.dir}: no such directory")
    for name in (options.dbfilename, options.appendfilename, options.appenddirname):
        if os.path.basename(name) != name or name in ("", ".", ".."):
            fail(f"{name!r}: a file name is expected, not a path")
    settings = snapshots.Settings(directory, options.dbfilename, rules, options.rdbchecksum == "yes",
                        options.appendonly == "yes", options.appendfsync, options.appendfilename,
                        options.appenddirname)  # fmt: skip
    snapshots.configure(settings)
    append_only.configure(settings)
    chapter14.configure(options)
    chapter14.COMMANDS.add(b"save", CommandSpec(snapshots.save, 1, ("admin", "noscript", "no_async_loading", "no_multi")))
    chapter14.COMMANDS.add(b"bgsave", CommandSpec(snapshots.bgsave, -1, ("admin", "noscript", "no_async_loading")))
    chapter14.COMMANDS.add(b"lastsave", CommandSpec(snapshots.lastsave, 1, ("loading", "stale", "fast")))
    chapter14.COMMANDS.add(b"shutdown", CommandSpec(shutdown, -1, ("admin", "noscript", "loading", "stale", "no_multi")))
    chapter14.COMMANDS.add(b"bgrewriteaof", CommandSpec(append_only.bgrewriteaof, 1, ("admin", "noscript", "no_async_loading")))
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
    chapter14.ADMIN.extra_info.setdefault("stats", []).append(
        lambda: {"latest_fork_usec": snapshots.latest_fork_usec, "total_forks": snapshots.total_forks})


def set_save_rules(text: bytes) -> str | None:
    rules = snapshots.parse_save_rules(text.decode(errors="replace"))
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
    if (option == b"save" or (option == b"" and settings.save_rules)) and not snapshots.save_now():
        out.error("ERR Errors trying to SHUTDOWN. Check logs.")
        return
    save_on_exit = False  # saved already, or NOSAVE
    log.info("SHUTDOWN from a client")
    raise KeyboardInterrupt  # unwinds the event loop, as SIGTERM does (common/net.py's serve)


def shut_down() -> None:
    """On exit (SIGTERM, Ctrl-C, SHUTDOWN), as Redis: stop a running child,
    flush and fsync the AOF, and save a snapshot if save rules are set."""
    aof = append_only.aof
    snapshots.stop_child()
    if aof is not None:
        append_only.write_aof()  # and fsync here: the worker pool is gone
        os.fsync(aof.descriptor)
        os.close(aof.descriptor)
    if save_on_exit if save_on_exit is not None else settings.save_rules:
        log.info("saving the snapshot before exiting")
        snapshots.write_snapshot(settings.rdb_path)


def main() -> None:
    run(parse_options("Chapter 16: persistence, RDB and AOF", add_options, client_limits=True))


def serve_chapter(title: str, add_options: Callable[[argparse.ArgumentParser], None], add_commands: Callable[[], None],
                  configure: Callable[[argparse.Namespace], None] = lambda options: None) -> None:  # fmt: skip
    """main() of a server built on this one: its command line, its
    commands wired into the seams, its settings, then run()."""
    options = parse_options(title, add_options, client_limits=True)
    add_commands()
    configure(options)
    run(options)


def run(options: argparse.Namespace) -> None:
    """Load the data, serve until stopped, persist on the way out (a server built on this one calls it too)."""
    raise_open_files_limit(options.maxclients + RESERVED_FDS)
    configure(options)
    # Loading makes a million objects: without this, Python's cyclic
    # collector would walk all those already loaded, again and again
    # (twice the loading time, measured). serve() would install it later.
    freeze_survivors()
    if settings.appendonly:
        append_only.load_aof()
        append_only.open_aof()
    else:
        snapshots.load_snapshot()
    try:
        chapter14.run(options, chapter15.EpollPoller)
    finally:
        shut_down()


if __name__ == "__main__":
    main()
