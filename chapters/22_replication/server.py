"""Chapter 22 (beyond the book): replication, and failover by Redis Sentinel.

One server is one machine and one point of failure. Redis's answer,
before Cluster, is replication: replicas that copy a master and then stay
in step, so that one can take over (chosen by Redis Sentinel) when the
master dies. A replica is an ordinary client that says PSYNC; from then
on the master streams to it every write it propagates, as the AOF sees it.
This chapter builds both sides, so that either can be real Redis:

* stream.py: the history of writes both sides share (its offset, its
  replication ids, the backlog, the replicas fed from it).
* This file, the master's side: PSYNC answered with +CONTINUE (the
  backlog still holds what the replica missed) or +FULLRESYNC and a
  snapshot from a forked child (through dump.rdb, or diskless.py: straight
  to the sockets), then the writes made since the fork; REPLCONF (the
  replica's port, address, capabilities, and its ACK every second); WAIT;
  min-replicas-to-write; a PING in the stream every
  repl-ping-replica-period seconds; expired keys propagated as DEL; ROLE
  and INFO replication.
* replica.py, the replica's side: REPLICAOF, the link to the master, the
  master client that applies the stream without replying.

Everything else is chapter 21's server, imported unchanged; this chapter
registers into its seams: chapter 16's unit listeners, children and the
end of a background save, chapter 14's commands processed, sockets
watched, expiry rules, keyspace events and timers, chapter 19's client
classes (a replica's output limit), chapter 21's client flags.

    make run-chapter 22
    redis-server --port 6380 --replicaof 127.0.0.1 6379    # a real Redis copies ours
    redis-cli SET greeting hello; redis-cli -p 6380 GET greeting
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter, load_chapter_module  # noqa: E402
from common.commands import (  # noqa: E402
    CommandSpec,
    parse_timeout_ms,
    unknown_subcommand_message,
    write_help,
    wrong_arity_message,
)
from common.config import memory_argument  # noqa: E402
from common.net import fail, log  # noqa: E402
from common.resp import encode_command, parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402

chapter21 = load_chapter(21)  # the server this chapter extends: clients, and everything before
chapter19 = chapter21.chapter19  # client classes and their output limits
chapter17 = chapter21.chapter17  # clients woken from a block resume their requests
chapter16 = chapter21.chapter16  # the units of writes, the background save
chapter14 = chapter21.chapter14  # the connections, the keyspace, the loop
snapshots, append_only = chapter16.snapshots, chapter16.append_only
COMMANDS = chapter14.COMMANDS

DEFAULT_PING_PERIOD = 10  # repl-ping-replica-period, seconds
NET_HOST_STR_LEN = 256  # Redis's bound on a host name (REPLCONF ip-address)
stream = load_chapter_module(22, "stream")  # the history of writes, shared by both sides
replica_side = load_chapter_module(22, "replica")  # following a master: REPLICAOF, the link, the master client
diskless = load_chapter_module(22, "diskless")  # a full copy straight to the sockets
STREAM, Replica, send = stream.STREAM, stream.Replica, stream.send


# --- PSYNC: a replica arrives ------------------------------------------------------------------


def psync(args: list[bytes], out: ReplyBuffer) -> None:
    """PSYNC replid offset: the stream from `offset` if the backlog still
    holds this history there (+CONTINUE), else a full copy (+FULLRESYNC)."""
    conn = chapter14.current_client
    if conn in STREAM.replicas or refused_while_link_down(out):
        return  # already a replica: Redis ignores it
    offset = parse_integer(args[1])
    if offset is not None and continue_from(conn, args[0].decode(errors="replace"), offset, out):
        return
    start_full_sync(conn, out, psync=True)


def sync(args: list[bytes], out: ReplyBuffer) -> None:
    """SYNC: the old protocol, always a full copy, with no +FULLRESYNC line."""
    conn = chapter14.current_client
    if conn not in STREAM.replicas and not refused_while_link_down(out):
        start_full_sync(conn, out, psync=False)


def refused_while_link_down(out: ReplyBuffer) -> bool:
    """A replica copies only what it holds in step with its master (chained replicas)."""
    if replica_side.link_down():
        out.error("NOMASTERLINK Can't SYNC while not connected with my master")
        return True
    return False


def continue_from(conn: Any, replid: str, offset: int, out: ReplyBuffer) -> bool:
    """A partial resynchronisation, if possible (Redis's masterTryPartialResynchronization)."""
    ours = replid == STREAM.replid or (replid == STREAM.replid2 and offset <= STREAM.second_offset)
    missed = STREAM.backlog.since(offset) if ours and STREAM.backlog is not None else None
    if missed is None:
        if replid != "?":  # "?": the replica knows no history, and asked for a full copy
            SYNCS.partial_err += 1
        return False
    replica = add_replica(conn)
    replica.state = "online"
    out += b"+CONTINUE %s\r\n" % STREAM.replid.encode()
    out += missed
    SYNCS.partial_ok += 1
    log.info("replica %s: partial resynchronisation from offset %d (%d bytes)", replica.address, offset, len(missed))
    return True


def add_replica(conn: Any) -> Replica:
    client = chapter21.clients.get(conn)
    told = announced.pop(conn, Announced())
    replica = Replica(conn, told.ip or (client.address.rsplit(":", 1)[0] if client else "?"))
    replica.listening_port, replica.eof_capable = told.port, told.eof
    STREAM.replicas[conn] = replica
    STREAM.create_backlog()
    return replica


def start_full_sync(conn: Any, out: ReplyBuffer, psync: bool) -> None:
    replica = add_replica(conn)
    replica.psync = psync
    replica.eof_capable = replica.eof_capable and psync  # the old SYNC takes a snapshot of known length only
    SYNCS.full += 1
    log.info("replica %s asks for a full copy", replica.address)
    check_waiting_replicas()  # now, or once the running child ended or the diskless delay passed


def check_waiting_replicas() -> None:
    """At once, and each loop iteration (chapter 14's cron_tasks): start the
    copy for the replicas waiting for one, once no other child runs (and
    the diskless delay has passed)."""
    waiting = [r for r in STREAM.replicas.values() if r.state == "wait_bgsave_start"]
    if not waiting or snapshots.child is not None:
        return
    if diskless.wanted_for(waiting):
        if diskless.may_start(waiting):
            start_sync_save(waiting, diskless.start)
    else:
        start_sync_save(waiting, lambda replicas: snapshots.start_bgsave())


def start_sync_save(waiting: list[Replica], fork: Any) -> None:
    """Fork the child that makes the snapshot for the replicas waiting;
    each is told the offset it stands at, and gets the writes after it."""
    if not fork(waiting):
        for replica in waiting:
            log.warning("replica %s: the background save could not start", replica.address)
            STREAM.drop(replica.conn)
        return
    STREAM.selected_db = -1  # the stream after the snapshot starts with SELECT
    for replica in waiting:
        replica.state = "wait_bgsave_end"
        replica.since_snapshot = 0  # what comes through send() from now on is stream; the snapshot comes apart
        if replica.psync:
            send(replica.conn, b"+FULLRESYNC %s %d\r\n" % (STREAM.replid.encode(), STREAM.offset))


def snapshot_saved(ok: bool) -> None:
    """chapter 16's after_bgsave: send the snapshot, then what was written meanwhile."""
    waiting = [r for r in STREAM.replicas.values() if r.state == "wait_bgsave_end" and not r.diskless]
    if not waiting:
        return
    snapshot = b""
    if ok:
        try:
            snapshot = chapter16.settings.rdb_path.read_bytes()
        except OSError as error:  # deleted or unreadable since the child wrote it: they will ask again
            log.error("cannot read the snapshot for the replicas: %s", error)
            ok = False
    if not ok:
        for replica in waiting:
            STREAM.drop(replica.conn)
        return
    for replica in waiting:
        replica.state = "online"
        replica.ack_time = time.monotonic()
        replica.conn.outgoing += b"$%d\r\n" % len(snapshot)  # appended piece by piece: no copy of the whole
        replica.conn.outgoing += snapshot
        send(replica.conn, replica.waiting)
        replica.waiting.clear()
        log.info("replica %s: snapshot of %d bytes sent, online", replica.address, len(snapshot))


def replica_closed(conn: Any) -> None:
    """chapter 14's close_tasks: a replica gone."""
    announced.pop(conn, None)
    if STREAM.replicas.pop(conn, None) is not None:
        log.info("a replica disconnected")


# --- REPLCONF ----------------------------------------------------------------------------------

@dataclass
class Announced:
    """What a client told with REPLCONF before its PSYNC."""

    port: int = 0  # listening-port
    ip: str = ""  # ip-address: where others should reach it (its replica-announce-ip)
    eof: bool = False  # capa eof: it can take a snapshot of unknown length (diskless)


announced: dict[Any, Announced] = {}


def replconf(args: list[bytes], out: ReplyBuffer) -> None:
    """REPLCONF option value ...: what a replica tells its master before
    PSYNC (its port, its capabilities), and after (ACK offset, unanswered)."""
    if len(args) % 2:
        out.error("ERR syntax error")
        return
    conn = chapter14.current_client
    for option, value in zip(args[0::2], args[1::2]):
        option = option.lower()
        if option == b"ack":
            replica = STREAM.replicas.get(conn)
            offset = parse_integer(value)
            if replica is not None and offset is not None:
                replica.ack_offset = max(replica.ack_offset, offset)
                replica.ack_time = time.monotonic()
                diskless.acknowledged(replica)
            return  # never answered: the replica does not read replies
        if option == b"getack":
            replica_side.ack_requested()  # answered once it ran, if our master asked
            return
        if option == b"listening-port":
            port = parse_integer(value)
            if port is None:
                out.error("ERR value is not an integer or out of range")
                return
            announced.setdefault(conn, Announced()).port = port
        elif option == b"capa":
            if value.lower() == b"eof":
                announced.setdefault(conn, Announced()).eof = True
        elif option == b"ip-address":
            if len(value) >= NET_HOST_STR_LEN:
                out.error(f"ERR REPLCONF ip-address provided by replica instance is too long: {len(value)} bytes")
                return
            announced.setdefault(conn, Announced()).ip = value.decode(errors="replace")
        elif option not in (b"rdb-only", b"rdb-filter-only"):
            out.error(f"ERR Unrecognized REPLCONF option: {option.decode(errors='replace')}")
            return
    out.simple("OK")


# --- min-replicas-to-write --------------------------------------------------------------------


@dataclass
class MinReplicas:
    """min-replicas-to-write and min-replicas-max-lag: refuse writes unless
    that many replicas acknowledged within that many seconds, so that a
    master cut off from its replicas stops taking writes it would lose."""

    to_write: int = 0  # 0: off
    max_lag: int = 10  # seconds

    def enabled(self) -> bool:
        return self.to_write > 0 and self.max_lag > 0

    def good_replicas(self) -> int:
        now = time.monotonic()
        return sum(1 for r in STREAM.replicas.values() if r.state == "online" and now - r.ack_time <= self.max_lag)


MIN_REPLICAS = MinReplicas()


def refuse_without_replicas(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """A write check (chapter 14's write_checks), as Redis's processCommand: too few good replicas, -NOREPLICAS."""
    if replica_side.is_replica() or not MIN_REPLICAS.enabled():
        return False
    if MIN_REPLICAS.good_replicas() < MIN_REPLICAS.to_write:
        out.error("NOREPLICAS Not enough good replicas to write.")
        return True
    return False


# --- WAIT ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class Waiting:
    """A client blocked in WAIT (Redis's BLOCKED_WAIT)."""

    conn: Any
    wanted: int  # replicas
    offset: int  # that must have acknowledged this much of the stream
    deadline: float  # time.monotonic(); inf: for ever


waiting: list[Waiting] = []
written_up_to: dict[Any, int] = {}  # a client -> the stream's offset after its last write (Redis's c->woff)
offset_seen = 0  # the stream's offset when the last command ended
getack_due = False


def wait(args: list[bytes], out: ReplyBuffer) -> None:
    """WAIT numreplicas timeout: block until that many replicas acknowledged
    this client's writes, or `timeout` ms passed (0: for ever); reply how many did."""
    global getack_due
    if replica_side.is_replica():
        out.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica "
                  "is configured to be writable (which is not the default) writes to replicas are just local and are "
                  "not propagated.")  # fmt: skip
        return
    wanted = parse_integer(args[0])
    if wanted is None:
        out.error("ERR value is not an integer or out of range")
        return
    timeout_ms = parse_timeout_ms(args[1], out)
    if timeout_ms is None:
        return
    conn = chapter14.current_client
    offset = written_up_to.get(conn, 0)
    acknowledged = replicas_acknowledging(offset)
    if acknowledged >= wanted or conn.deny_blocking:  # inside MULTI: never blocks, as Redis
        out.integer(acknowledged)
        return
    conn.blocked = True
    waiting.append(Waiting(conn, wanted, offset, time.monotonic() + timeout_ms / 1000 if timeout_ms else math.inf))
    getack_due = True  # before the loop sleeps, every replica is asked where it is


def replicas_acknowledging(offset: int) -> int:
    return sum(1 for r in STREAM.replicas.values() if r.state == "online" and r.ack_offset >= offset)


def note_written() -> None:
    """After each command (chapter 14's after_command, once chapter 16 has
    propagated it): if the stream grew, its client wrote up to here."""
    global offset_seen
    if STREAM.offset != offset_seen:
        offset_seen = STREAM.offset
        if chapter14.current_client is not None:
            written_up_to[chapter14.current_client] = offset_seen


def serve_waiting() -> None:
    """Before the loop sleeps (chapter 14's before_sleep_tasks, before
    chapter 17 resumes the clients it woke): ask the replicas for an ACK if
    a WAIT wants one, and answer every WAIT whose replicas acknowledged or
    whose time is up (Redis's processClientsWaitingReplicas)."""
    global getack_due
    if getack_due and STREAM.wants_units():
        STREAM.feed(encode_command(b"REPLCONF", b"GETACK", b"*"))
    getack_due = False
    if not waiting:
        return
    now = time.monotonic()
    for blocked in list(waiting):
        acknowledged = replicas_acknowledging(blocked.offset)
        gone = blocked.conn.sock.fileno() == -1
        if gone or acknowledged >= blocked.wanted or blocked.deadline <= now:
            waiting.remove(blocked)
            if not gone:
                blocked.conn.blocked = False
                blocked.conn.outgoing.integer(acknowledged)
                chapter17.woken.append(blocked.conn)


def release_waiting(conn: Any, error: bool) -> None:
    """CLIENT UNBLOCK of a client in WAIT (chapter 21's other_blocking):
    the count so far, as if its time were up, or Redis's error."""
    blocked = next(blocked for blocked in waiting if blocked.conn is conn)
    waiting.remove(blocked)
    conn.blocked = False
    if error:
        conn.outgoing.error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    else:
        conn.outgoing.integer(replicas_acknowledging(blocked.offset))
    chapter17.woken.append(conn)  # it goes on with what it sent meanwhile


def next_wait_timeout_ms() -> int | None:
    """chapter 14's timers: when the soonest WAIT times out."""
    deadline = min((blocked.deadline for blocked in waiting), default=math.inf)
    return None if deadline == math.inf else max(0, math.ceil((deadline - time.monotonic()) * 1000))


def take_waiting_clients() -> list[Any]:
    """The clients blocked in WAIT, taken off the list: a master become replica lets them go."""
    taken = [blocked.conn for blocked in waiting]
    waiting.clear()
    return taken


def forget_writer(conn: Any) -> None:
    """chapter 14's close_tasks."""
    written_up_to.pop(conn, None)


# --- SCRIPT KILL --------------------------------------------------------------------------------

SCRIPT_HELP = ["KILL", "    Kill the currently executing Lua script.", "HELP", "    Print this help."]


def script(args: list[bytes], out: ReplyBuffer) -> None:
    """SCRIPT KILL | HELP. Sentinel sends SCRIPT KILL to a master that
    answered -BUSY (a script running too long). Scripting is not part of
    this project: no script ever runs, and KILL answers as Redis does when
    none is running. The other subcommands (LOAD, EXISTS, FLUSH) are not here."""
    subcommand = args[0].lower()
    if subcommand not in (b"kill", b"help"):
        out.error(unknown_subcommand_message(args[0], "SCRIPT"))
    elif len(args) != 1:
        out.error(wrong_arity_message(b"script|" + subcommand))
    elif subcommand == b"kill":
        out.error("NOTBUSY No scripts in execution right now.")
    else:
        write_help(out, "SCRIPT", SCRIPT_HELP)


# --- ROLE and INFO -----------------------------------------------------------------------------


def role(args: list[bytes], out: ReplyBuffer) -> None:
    """ROLE: master, its offset, and each online replica's ip, port and acknowledged offset."""
    if replica_side.is_replica():
        replica_side.role(out)
        return
    online = [replica for replica in STREAM.replicas.values() if replica.state == "online"]
    out.array(3)
    out.bulk(b"master")
    out.integer(STREAM.offset)
    out.array(len(online))
    for replica in online:
        out.bulk_array([replica.address.encode(), b"%d" % replica.listening_port, b"%d" % replica.ack_offset])


def info_replication() -> dict[str, object]:
    backlog = STREAM.backlog
    fields: dict[str, object] = {"role": "master"}
    if replica_side.is_replica():
        fields = {"role": "slave", **replica_side.info_fields()}
    fields["connected_slaves"] = len(STREAM.replicas)
    if MIN_REPLICAS.enabled():
        fields["min_slaves_good_slaves"] = MIN_REPLICAS.good_replicas()
    now = time.monotonic()
    for number, replica in enumerate(STREAM.replicas.values()):
        state = {"wait_bgsave_start": "wait_bgsave", "wait_bgsave_end": "wait_bgsave"}.get(replica.state, "online")
        fields[f"slave{number}"] = (f"ip={replica.address},port={replica.listening_port},state={state},"
                                    f"offset={replica.ack_offset},lag={int(now - replica.ack_time)}")  # fmt: skip
    fields |= {
        "master_failover_state": "no-failover",
        "master_replid": STREAM.replid,
        "master_replid2": STREAM.replid2,
        "master_repl_offset": STREAM.offset,
        "second_repl_offset": STREAM.second_offset,
        "repl_backlog_active": int(backlog is not None),
        "repl_backlog_size": STREAM.backlog_size,
        "repl_backlog_first_byte_offset": backlog.first_offset if backlog else 0,
        "repl_backlog_histlen": len(backlog.data) if backlog else 0,
    }
    return fields


@dataclass
class SyncCounts:
    """INFO's sync_full, sync_partial_ok, sync_partial_err."""

    full: int = 0
    partial_ok: int = 0
    partial_err: int = 0


SYNCS = SyncCounts()


# --- wiring ------------------------------------------------------------------------------------

ping_period = DEFAULT_PING_PERIOD
last_ping = 0.0


def ping_replicas() -> None:
    """Measured from the last PING, so that a new repl-ping-replica-period counts at once."""
    global last_ping
    now = time.monotonic()
    if now - last_ping >= ping_period:
        last_ping = now
        STREAM.ping()


def propagate_expiry(kind: str, event: str, key: bytes) -> None:
    """chapter 14's keyspace listener: a key that expired (lazily or
    actively) goes to the AOF and the replicas as DEL, as Redis's
    propagateDeletion: a replica never expires a key on its own."""
    if event == "expired" and STREAM.wants_units():
        chapter16.propagate([b"DEL", key])


def propagate_publish(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After a call (chapter 14's after_call): PUBLISH and SPUBLISH go to
    the replicas, not to the AOF, so that a replica's subscribers hear
    what the master's do (Redis's forceCommandPropagation(PROPAGATE_REPL))."""
    if name in (b"publish", b"spublish") and STREAM.wants_units() and not out.startswith(b"-", reply_start):
        STREAM.take_unit([[name, *args]])


def set_ping_period(seconds: int) -> None:
    global ping_period
    ping_period = seconds


def set_backlog_size(value: int) -> None:
    STREAM.backlog_size = value
    if STREAM.backlog is not None:
        STREAM.backlog.size = value
        STREAM.backlog.add(b"")  # trimmed to the new size


# COMMAND DOCS (chapter 21's command_docs.py): group | since | complexity | summary | syntax
DOCS = """
server | 2.8.0 | O(1), then a full copy or the part of the backlog missed | A replica asks for the stream from its offset | PSYNC replicationid offset
server | 1.0.0 | O(N) where N is the number of keys | A replica asks for a full copy (the old protocol) | SYNC
server | 3.0.0 | O(1) | What a replica tells its master: its port, capabilities, and the offset applied | REPLCONF [option value [option value ...]]
server | 2.8.12 | O(1) | This server's role in replication, and its replicas | ROLE
server | 5.0.0 | O(1) | Makes this server a replica of another, or a master again | REPLICAOF host port
server | 1.0.0 | O(1) | Makes this server a replica of another, or a master again (the old name of REPLICAOF) | SLAVEOF host port
generic | 3.0.0 | O(1) | Blocks until the writes of this client are acknowledged by that many replicas | WAIT numreplicas timeout
scripting | 2.6.0 | O(1) | Kill the script currently in execution (none ever runs here) | SCRIPT KILL
scripting | 5.0.0 | O(1) | Show helpful text about the different subcommands | SCRIPT HELP
"""


def add_commands() -> None:
    """Chapter 21's commands, and the replication ones, wired into the seams of the chapters before."""
    chapter21.add_commands()
    chapter21.command_docs.document(DOCS)
    COMMANDS.add_all({
        b"psync": CommandSpec(psync, -3, ("admin", "noscript", "no_async_loading", "no_multi")),
        b"sync": CommandSpec(sync, 1, ("admin", "noscript", "no_async_loading", "no_multi")),
        b"replconf": CommandSpec(replconf, -1, ("admin", "noscript", "loading", "stale", "allow_busy")),
        b"role": CommandSpec(role, 1, ("noscript", "loading", "stale", "fast")),
        b"replicaof": CommandSpec(replica_side.replicaof, 3, ("admin", "noscript", "stale", "no_async_loading")),
        b"slaveof": CommandSpec(replica_side.replicaof, 3, ("admin", "noscript", "stale", "no_async_loading")),
        b"wait": CommandSpec(wait, 3, ("noscript",)),
        b"script": CommandSpec(script, -2, ("noscript", "allow_busy")),
    })  # fmt: skip
    append_only.unit_listeners.append(STREAM)
    snapshots.after_bgsave.append(snapshot_saved)
    snapshots.finish_child["rdb-socket"] = diskless.child_done
    chapter14.keyspace_listeners.append(propagate_expiry)
    COMMANDS.after_call.append(propagate_publish)
    COMMANDS.write_checks.append(refuse_without_replicas)
    chapter14.cron_tasks.extend([check_waiting_replicas, ping_replicas])
    chapter14.timers.extend([lambda: 1000 if STREAM.replicas else None, next_wait_timeout_ms])
    chapter14.close_tasks.extend([replica_closed, forget_writer])
    COMMANDS.after_command.append(note_written)  # after chapter 16's, which propagates
    tasks = chapter14.before_sleep_tasks
    tasks.insert(tasks.index(chapter17.serve_woken), serve_waiting)
    replica_side.take_waiting_clients = take_waiting_clients
    replica_side.wire(chapter14.ADMIN.config)
    chapter14.idle_exemptions.append(lambda conn: conn in STREAM.replicas or replica_side.is_master_client(conn))
    chapter21.other_blocking.append(chapter21.OtherBlocking(lambda: {blocked.conn: blocked.deadline for blocked in waiting},
                                                            release_waiting))  # fmt: skip
    chapter19.other_client_classes.append(lambda conn: "slave" if conn in STREAM.replicas else None)
    chapter21.more_client_flags.append(lambda conn: "S" if conn in STREAM.replicas else "")
    admin = chapter14.ADMIN
    admin.extra_info.setdefault("replication", []).append(info_replication)
    admin.extra_info.setdefault("stats", []).append(
        lambda: {"sync_full": SYNCS.full, "sync_partial_ok": SYNCS.partial_ok, "sync_partial_err": SYNCS.partial_err})
    admin.config.add_integer("repl-backlog-size", lambda: STREAM.backlog_size, set_backlog_size,
                             minimum=16 * 1024, memory=True)  # fmt: skip
    admin.config.add_integer("repl-ping-replica-period", lambda: ping_period, set_ping_period, minimum=1)
    admin.config.add_boolean("repl-diskless-sync", lambda: diskless.SETTINGS.enabled,
                             lambda value: setattr(diskless.SETTINGS, "enabled", value))  # fmt: skip
    admin.config.add_integer("repl-diskless-sync-delay", lambda: diskless.SETTINGS.delay,
                             lambda value: setattr(diskless.SETTINGS, "delay", value), maximum=2**31 - 1)  # fmt: skip
    for prefix in ("min-replicas", "min-slaves"):  # Redis's names, new and old
        admin.config.add_integer(f"{prefix}-to-write", lambda: MIN_REPLICAS.to_write,
                                 lambda value: setattr(MIN_REPLICAS, "to_write", value))  # fmt: skip
        admin.config.add_integer(f"{prefix}-max-lag", lambda: MIN_REPLICAS.max_lag,
                                 lambda value: setattr(MIN_REPLICAS, "max_lag", value))  # fmt: skip


def add_options(parser: Any) -> None:
    chapter21.add_options(parser)
    replica_side.add_options(parser)
    parser.add_argument("--repl-backlog-size", type=memory_argument, default=stream.DEFAULT_BACKLOG_SIZE, metavar="BYTES",
                        help="how much of the stream a replica may miss and still resume (default: 1 MB)")  # fmt: skip
    parser.add_argument("--repl-diskless-sync", choices=["yes", "no"], default="yes",
                        help="send a full copy from the child straight to the replicas, not through dump.rdb "
                             "(default: yes)")  # fmt: skip
    parser.add_argument("--repl-diskless-sync-delay", type=int, default=5, metavar="SECONDS",
                        help="wait this long for more replicas to share a diskless copy (default: 5)")
    parser.add_argument("--min-replicas-to-write", type=int, default=0, metavar="N",
                        help="refuse writes unless N replicas are in step (default: 0, never)")  # fmt: skip
    parser.add_argument("--min-replicas-max-lag", type=int, default=10, metavar="SECONDS",
                        help="in step: acknowledged within this many seconds (default: 10)")  # fmt: skip


def configure(options: Any) -> None:
    chapter21.configure(options)
    replica_side.configure(options, fail)
    STREAM.backlog_size = options.repl_backlog_size
    diskless.SETTINGS.enabled = options.repl_diskless_sync == "yes"
    diskless.SETTINGS.delay = options.repl_diskless_sync_delay
    MIN_REPLICAS.to_write, MIN_REPLICAS.max_lag = options.min_replicas_to_write, options.min_replicas_max_lag


def main() -> None:
    chapter16.serve_chapter("Chapter 22: replication", add_options, add_commands, configure)


if __name__ == "__main__":
    main()
