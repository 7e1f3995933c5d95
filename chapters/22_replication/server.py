"""Chapter 22 (beyond the book): replication, the master's side.

One server is one machine and one point of failure. Redis's answer,
before Cluster, is replication: replicas that copy a master and then stay
in step, so that one can take over (chosen by Redis Sentinel) when the
master dies. A replica is an ordinary client that says PSYNC; from then
on the master streams to it every write it propagates, as the AOF sees it.

* The replication stream (`Stream`): every unit of writes chapter 16
  forms for the AOF (relative times made absolute, a blocked client's
  pop as the pop it was), SELECT 0 first, is appended to a backlog of
  the last `repl-backlog-size` bytes and sent to every online replica.
  Its length so far is the master's replication offset; a 40-hex
  replication id names this history.
* A full resynchronisation (`+FULLRESYNC <replid> <offset>`): a
  background save (chapter 16's fork), the snapshot sent as one bulk, then
  the writes made since the fork, which waited in the replica's buffer.
* A partial one (`+CONTINUE <replid>`): a replica that lost its link
  asks for the stream from its offset; if the backlog still holds it, it
  gets only what it missed.
* REPLCONF (the replica's port and capabilities, and its ACK of the
  offset it has applied, every second), ROLE, INFO replication with
  Redis's fields, a PING in the stream every `repl-ping-replica-period`
  seconds, and a key that expires propagated as DEL: a replica never
  expires a key on its own.
* min-replicas-to-write: writes refused (-NOREPLICAS) unless enough
  replicas acknowledged within min-replicas-max-lag seconds.

Everything else is chapter 21's server, imported unchanged; this chapter
registers into its seams: chapter 16's unit listeners and the end of a
background save, chapter 14's keyspace events and timers, chapter 19's
client classes (a replica's output limit), chapter 21's client flags.

    make run-chapter 22
    redis-server --port 6380 --replicaof 127.0.0.1 6379    # a real Redis copies ours
    redis-cli SET greeting hello; redis-cli -p 6380 GET greeting
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.commands import CommandSpec  # noqa: E402
from common.config import memory_argument  # noqa: E402
from common.net import log  # noqa: E402
from common.resp import encode_command, parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402

chapter21 = load_chapter(21)  # the server this chapter extends: clients, and everything before
chapter19 = chapter21.chapter19  # client classes and their output limits
chapter16 = chapter21.chapter16  # the units of writes, the background save
chapter14 = chapter21.chapter14  # the connections, the keyspace, the loop
snapshots, append_only = chapter16.snapshots, chapter16.append_only
COMMANDS = chapter14.COMMANDS

DEFAULT_BACKLOG_SIZE = 1024 * 1024  # repl-backlog-size
DEFAULT_PING_PERIOD = 10  # repl-ping-replica-period, seconds


# --- the replication stream --------------------------------------------------------------------


class Backlog:
    """The last `size` bytes of the stream (Redis's repl_backlog), and where
    they start: a replica that lost its link resumes from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = bytearray()
        self.first_offset = 1  # the stream offset of data[0]

    def add(self, data: bytes) -> None:
        self.data += data
        excess = len(self.data) - self.size
        if excess > 0:
            del self.data[:excess]
            self.first_offset += excess

    def since(self, offset: int) -> bytearray | None:
        """The stream from `offset` on (the next byte a replica wants), or None if the backlog no longer holds it."""
        if not self.first_offset <= offset <= self.first_offset + len(self.data):
            return None
        return self.data[offset - self.first_offset :]


@dataclass(eq=False)
class Replica:
    """A client that said PSYNC (or SYNC): Redis's client with CLIENT_SLAVE."""

    conn: Any
    address: str  # its ip
    listening_port: int = 0  # REPLCONF listening-port
    state: str = "wait_bgsave_start"  # then wait_bgsave_end, online (Redis's replstate, as INFO prints it)
    waiting: bytearray = field(default_factory=bytearray)  # the stream since the fork, until the snapshot is sent
    ack_offset: int = 0  # REPLCONF ACK
    ack_time: float = field(default_factory=time.monotonic)
    psync: bool = True  # PSYNC (a +FULLRESYNC line first) or the old SYNC (the snapshot alone)


class Stream:
    """The master's history of writes, as the replicas receive it."""

    def __init__(self) -> None:
        self.replid = secrets.token_hex(20)
        self.replid2 = "0" * 40  # the history this one continued (after a promotion)
        self.second_offset = -1  # up to where replid2's history is ours
        self.offset = 0  # master_repl_offset: bytes of stream so far
        self.backlog: Backlog | None = None  # made for the first replica, kept after (as Redis)
        self.backlog_size = DEFAULT_BACKLOG_SIZE
        self.selected_db = -1  # -1: the next write sends SELECT 0 first
        self.replicas: dict[Any, Replica] = {}  # connection -> its Replica, in the order they came

    # chapter 16's unit listener: wants_units() and take_unit()

    def wants_units(self) -> bool:
        return self.backlog is not None

    def take_unit(self, commands: list[list[bytes]]) -> None:
        data = bytearray()
        if self.selected_db != 0:
            data += encode_command(b"SELECT", b"0")
            self.selected_db = 0
        for command in commands:
            data += encode_command(*command)
        self.feed(bytes(data))

    def feed(self, data: bytes) -> None:
        """Add to the stream: the backlog, then every replica, now or once its snapshot is sent."""
        assert self.backlog is not None
        self.backlog.add(data)
        self.offset += len(data)
        for replica in list(self.replicas.values()):
            if replica.state == "online":
                send(replica.conn, data)
            elif replica.state == "wait_bgsave_end":
                replica.waiting += data

    def ping(self) -> None:
        """Every repl-ping-replica-period seconds, a PING in the stream: a replica hears from its master."""
        if self.replicas:
            self.feed(encode_command(b"PING"))


STREAM = Stream()


def send(conn: Any, data: bytes) -> None:
    """Queue stream bytes to a replica; past its output limit (replica class), it is disconnected."""
    conn.outgoing += data
    chapter14.clients_pending_write[id(conn)] = conn
    chapter19.output_limits.enforce(conn, "slave")


# --- PSYNC: a replica arrives ------------------------------------------------------------------


def psync(args: list[bytes], out: ReplyBuffer) -> None:
    """PSYNC replid offset: the stream from `offset` if the backlog still
    holds this history there (+CONTINUE), else a full copy (+FULLRESYNC)."""
    conn = chapter14.current_client
    if conn in STREAM.replicas:
        return  # already a replica: Redis ignores it
    offset = parse_integer(args[1])
    if offset is not None and continue_from(conn, args[0].decode(errors="replace"), offset, out):
        return
    start_full_sync(conn, out, psync=True)


def sync(args: list[bytes], out: ReplyBuffer) -> None:
    """SYNC: the old protocol, always a full copy, with no +FULLRESYNC line."""
    conn = chapter14.current_client
    if conn not in STREAM.replicas:
        start_full_sync(conn, out, psync=False)


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
    replica = Replica(conn, client.address.rsplit(":", 1)[0] if client else "?")
    replica.listening_port = announced_ports.pop(conn, 0)
    STREAM.replicas[conn] = replica
    if STREAM.backlog is None:
        STREAM.backlog = Backlog(STREAM.backlog_size)
        STREAM.backlog.first_offset = STREAM.offset + 1
    return replica


def start_full_sync(conn: Any, out: ReplyBuffer, psync: bool) -> None:
    replica = add_replica(conn)
    replica.psync = psync
    SYNCS.full += 1
    log.info("replica %s asks for a full copy", replica.address)
    if snapshots.child is None:
        start_sync_save()
    # else: it waits for the running child to end (check_waiting_replicas)


def start_sync_save() -> None:
    """Fork a background save for every replica waiting for one; each is told
    the offset its snapshot stands at, and gets the writes after it."""
    if not snapshots.start_bgsave():
        for replica in [r for r in STREAM.replicas.values() if r.state == "wait_bgsave_start"]:
            log.warning("replica %s: the background save could not start", replica.address)
            drop_replica(replica.conn)
        return
    STREAM.selected_db = -1  # the stream after the snapshot starts with SELECT
    for replica in STREAM.replicas.values():
        if replica.state == "wait_bgsave_start":
            replica.state = "wait_bgsave_end"
            if replica.psync:
                send(replica.conn, b"+FULLRESYNC %s %d\r\n" % (STREAM.replid.encode(), STREAM.offset))


def snapshot_saved(ok: bool) -> None:
    """chapter 16's after_bgsave: send the snapshot, then what was written meanwhile."""
    waiting = [replica for replica in STREAM.replicas.values() if replica.state == "wait_bgsave_end"]
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
            drop_replica(replica.conn)
        return
    for replica in waiting:
        replica.state = "online"
        replica.ack_time = time.monotonic()
        replica.conn.outgoing += b"$%d\r\n" % len(snapshot)  # appended piece by piece: no copy of the whole
        replica.conn.outgoing += snapshot
        send(replica.conn, replica.waiting)
        replica.waiting.clear()
        log.info("replica %s: snapshot of %d bytes sent, online", replica.address, len(snapshot))


def check_waiting_replicas() -> None:
    """Each loop iteration (chapter 14's cron_tasks): replicas that came
    while another child ran get their save once it is over."""
    if snapshots.child is None and any(r.state == "wait_bgsave_start" for r in STREAM.replicas.values()):
        start_sync_save()


def drop_replica(conn: Any) -> None:
    """Let a replica go: it will connect again and ask anew."""
    STREAM.replicas.pop(conn, None)
    chapter21.disconnect(conn)


def replica_closed(conn: Any) -> None:
    """chapter 14's close_tasks: a replica gone."""
    announced_ports.pop(conn, None)
    if STREAM.replicas.pop(conn, None) is not None:
        log.info("a replica disconnected")


# --- REPLCONF ----------------------------------------------------------------------------------

announced_ports: dict[Any, int] = {}  # REPLCONF listening-port, before its PSYNC


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
            return  # never answered: the replica does not read replies
        if option == b"getack":
            return  # a master asks its replicas; a replica of ours is asked by us only
        if option == b"listening-port":
            port = parse_integer(value)
            if port is None:
                out.error("ERR value is not an integer or out of range")
                return
            announced_ports[conn] = port
        elif option not in (b"ip-address", b"capa", b"rdb-only", b"rdb-filter-only"):
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
    if MIN_REPLICAS.enabled() and MIN_REPLICAS.good_replicas() < MIN_REPLICAS.to_write:
        out.error("NOREPLICAS Not enough good replicas to write.")
        return True
    return False


# --- ROLE and INFO -----------------------------------------------------------------------------


def role(args: list[bytes], out: ReplyBuffer) -> None:
    """ROLE: master, its offset, and each online replica's ip, port and acknowledged offset."""
    online = [replica for replica in STREAM.replicas.values() if replica.state == "online"]
    out.array(3)
    out.bulk(b"master")
    out.integer(STREAM.offset)
    out.array(len(online))
    for replica in online:
        out.bulk_array([replica.address.encode(), b"%d" % replica.listening_port, b"%d" % replica.ack_offset])


def info_replication() -> dict[str, object]:
    backlog = STREAM.backlog
    fields: dict[str, object] = {"role": "master", "connected_slaves": len(STREAM.replicas)}
    if MIN_REPLICAS.enabled():
        fields["min_slaves_good_slaves"] = MIN_REPLICAS.good_replicas()
    now = time.monotonic()
    for number, replica in enumerate(STREAM.replicas.values()):
        state = {"online": "online", "wait_bgsave_start": "wait_bgsave", "wait_bgsave_end": "wait_bgsave"}[replica.state]
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
    if event == "expired" and STREAM.backlog is not None:
        chapter16.propagate([b"DEL", key])


def propagate_publish(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After a call (chapter 14's after_call): PUBLISH and SPUBLISH go to
    the replicas, not to the AOF, so that a replica's subscribers hear
    what the master's do (Redis's forceCommandPropagation(PROPAGATE_REPL))."""
    if name in (b"publish", b"spublish") and STREAM.backlog is not None and not out.startswith(b"-", reply_start):
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
    })  # fmt: skip
    append_only.unit_listeners.append(STREAM)
    snapshots.after_bgsave.append(snapshot_saved)
    chapter14.keyspace_listeners.append(propagate_expiry)
    COMMANDS.after_call.append(propagate_publish)
    COMMANDS.write_checks.append(refuse_without_replicas)
    chapter14.cron_tasks.extend([check_waiting_replicas, ping_replicas])
    chapter14.timers.append(lambda: 1000 if STREAM.replicas else None)
    chapter14.close_tasks.append(replica_closed)
    chapter19.other_client_classes.append(lambda conn: "slave" if conn in STREAM.replicas else None)
    chapter21.more_client_flags.append(lambda conn: "S" if conn in STREAM.replicas else "")
    admin = chapter14.ADMIN
    admin.extra_info.setdefault("replication", []).append(info_replication)
    admin.extra_info.setdefault("stats", []).append(
        lambda: {"sync_full": SYNCS.full, "sync_partial_ok": SYNCS.partial_ok, "sync_partial_err": SYNCS.partial_err})
    admin.config.add_integer("repl-backlog-size", lambda: STREAM.backlog_size, set_backlog_size,
                             minimum=16 * 1024, memory=True)  # fmt: skip
    admin.config.add_integer("repl-ping-replica-period", lambda: ping_period, set_ping_period, minimum=1)
    for prefix in ("min-replicas", "min-slaves"):  # Redis's names, new and old
        admin.config.add_integer(f"{prefix}-to-write", lambda: MIN_REPLICAS.to_write,
                                 lambda value: setattr(MIN_REPLICAS, "to_write", value))  # fmt: skip
        admin.config.add_integer(f"{prefix}-max-lag", lambda: MIN_REPLICAS.max_lag,
                                 lambda value: setattr(MIN_REPLICAS, "max_lag", value))  # fmt: skip


def add_options(parser: Any) -> None:
    chapter21.add_options(parser)
    parser.add_argument("--repl-backlog-size", type=memory_argument, default=DEFAULT_BACKLOG_SIZE, metavar="BYTES",
                        help="how much of the stream a replica may miss and still resume (default: 1 MB)")  # fmt: skip
    parser.add_argument("--min-replicas-to-write", type=int, default=0, metavar="N",
                        help="refuse writes unless N replicas are in step (default: 0, never)")  # fmt: skip
    parser.add_argument("--min-replicas-max-lag", type=int, default=10, metavar="SECONDS",
                        help="in step: acknowledged within this many seconds (default: 10)")  # fmt: skip


def configure(options: Any) -> None:
    chapter21.configure(options)
    STREAM.backlog_size = options.repl_backlog_size
    MIN_REPLICAS.to_write, MIN_REPLICAS.max_lag = options.min_replicas_to_write, options.min_replicas_max_lag


def main() -> None:
    chapter16.serve_chapter("Chapter 22: replication", add_options, add_commands, configure)


if __name__ == "__main__":
    main()
