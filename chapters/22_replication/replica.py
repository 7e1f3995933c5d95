"""Chapter 22: the replica's side, following a master.

REPLICAOF host port (or SLAVEOF, or --replicaof at start) makes this
server a copy of another, ours or real Redis; REPLICAOF NO ONE makes it a
master again. The link to the master goes through Redis's states, the
ones ROLE names, all in the event loop, never waiting on the network:

* connect: no link; the next try comes within a second (replication_cron).
* connecting: a non-blocking connect() under way (the socket is watched
  for writability, chapter 14's watch_socket).
* handshake: PING, AUTH if `masterauth` is set, REPLCONF listening-port,
  REPLCONF capa eof capa psync2, then PSYNC with the history we have
  (`PSYNC <replid> <offset+1>`, or `PSYNC ? -1` if none), one reply each.
* sync: after +FULLRESYNC <replid> <offset>, the snapshot arrives, as
  `$<length>` and that many bytes, or `$EOF:<40 bytes>` ... the same 40
  bytes (a master that writes it straight to the socket), into a temporary
  file. Meanwhile the old data serves reads (replica-serve-stale-data).
  Then the file replaces dump.rdb, the keyspace is emptied and loaded from
  it, and the master's history (id and offset) is ours.
* connected: the socket becomes a client of chapter 14's loop, the master
  client, whose commands run as any client's but are never answered
  (commandProcessed: its replies are cut). Each command's bytes advance
  our offset and go on, unchanged, to our own replicas. REPLCONF ACK
  <offset> goes back every second, and at once for REPLCONF GETACK.
  After +CONTINUE (a partial resynchronisation) there is no snapshot: the
  link is connected at once and the stream goes on where it stopped.

A replica refuses writes from its clients (`replica-read-only`), and never
expires a key itself: an expired key reads as missing, but only the
master's DEL deletes it, so that master and replicas hold the same keys
(chapter 14's expired_key_rules).
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from common.chapters import load_chapter, load_chapter_module
from common.commands import CommandSpec
from common.net import log
from common.rdb import RdbError, RdbReader
from common.resp import encode_command, parse_integer
from common.resp3 import ReplyBuffer

chapter21 = load_chapter(21)  # clients: the master client's flags and user
chapter18 = chapter21.chapter18  # WATCH: a new dataset touches every watched key
chapter17 = chapter21.chapter17  # blocked clients, let go when the role changes
chapter16 = chapter21.chapter16  # the snapshot: its file, its loader, the children
chapter14 = chapter21.chapter14  # the loop, its sockets, the keyspace
snapshots = chapter16.snapshots
COMMANDS = chapter14.COMMANDS
STREAM = load_chapter_module(22, "stream").STREAM

READ_BYTES = 16 * 1024
MAX_REPLY_LINE = 64 * 1024  # a handshake reply longer than this is not from a master: the link is dropped
EOF_MARK_LENGTH = 40  # $EOF:<40 random bytes>, as Redis's RDB_EOF_MARK_SIZE
CONNECT_EVERY = 1.0  # seconds between tries, as Redis's replicationCron
ACK_EVERY = 1.0
UNBLOCKED = "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
# Errors a master may answer PING with that still let the handshake go on (it wants AUTH, which comes next).
PING_ERRORS_ACCEPTED = (b"-NOAUTH", b"-NOPERM", b"-ERR operation not permitted")


@dataclass
class ReplicaSettings:
    read_only: bool = True  # replica-read-only
    serve_stale_data: bool = True  # replica-serve-stale-data
    timeout: int = 60  # repl-timeout, seconds
    masterauth: bytes = b""
    masteruser: bytes = b""
    priority: int = 100  # replica-priority: Sentinel promotes the lowest, never 0
    announced: bool = True  # replica-announced: whether Sentinel lists it


SETTINGS = ReplicaSettings()


@dataclass
class Transfer:
    """The snapshot arriving: into a temporary file, as Redis's temp-<time>.<pid>.rdb."""

    path: Path
    file: BinaryIO
    size: int | None  # None: ends with the EOF mark
    eof_mark: bytes = b""
    received: int = 0
    tail: bytearray = field(default_factory=bytearray)  # the last bytes, which may be the mark


@dataclass(eq=False)
class MasterLink:
    """This server's master, and the link to it (Redis's masterhost, repl_state, master client)."""

    host: str
    port: int
    state: str = "connect"  # connect, connecting, handshake, sync, connected
    sock: socket.socket | None = None
    received: bytearray = field(default_factory=bytearray)  # replies not yet read, in the handshake and sync
    steps: list[Any] = field(default_factory=list)  # the handshake's replies still to read
    transfer: Transfer | None = None
    master_replid: str = ""  # from +FULLRESYNC
    master_offset: int = 0
    conn: Any = None  # the master client, once connected
    last_io: float = field(default_factory=time.monotonic)
    next_try: float = 0.0
    down_since: float = field(default_factory=time.time)
    last_ack: float = 0.0
    ack_requested: bool = False  # REPLCONF GETACK seen in the stream


LINK: MasterLink | None = None
# Whether the stream we hold may be continued by PSYNC (Redis's cached
# master): after a link that worked, or our own history when we were a
# master; not when started with --replicaof, which knows none.
has_history = False


def is_replica() -> bool:
    return LINK is not None


def link_down() -> bool:
    return LINK is not None and LINK.state != "connected"


def is_master_client(conn: Any) -> bool:
    return LINK is not None and conn is not None and conn is LINK.conn


# --- REPLICAOF -----------------------------------------------------------------------------------


def replicaof(args: list[bytes], out: ReplyBuffer) -> None:
    """REPLICAOF host port | NO ONE (and SLAVEOF, its old name)."""
    if args[0].lower() == b"no" and args[1].lower() == b"one":
        if LINK is not None:
            promote()
            log.info("MASTER MODE enabled (user request)")
        out.simple("OK")
        return
    if chapter14.current_client in STREAM.replicas:
        out.error("ERR Command is not valid when client is a replica.")
        return
    port = parse_integer(args[1])
    if port is None or not 0 <= port <= 65535:
        out.error("ERR Invalid master port")
        return
    host = args[0].decode(errors="replace")
    if LINK is not None and LINK.host.lower() == host.lower() and LINK.port == port:
        out += b"+OK Already connected to specified master\r\n"
        return
    follow(host, port)
    out.simple("OK")


def follow(host: str, port: int, known_history: bool = True) -> None:
    """Become (or stay) a replica, of host:port now (Redis's replicationSetMaster)."""
    global LINK, has_history
    was_master = LINK is None
    if LINK is not None:
        drop_link()
    disconnect_blocked_clients()
    if was_master:
        has_history = known_history  # our own history, to resume from if the new master shares it
    LINK = MasterLink(host, port)
    STREAM.proxying = True
    log.info("Connecting to MASTER %s:%d", host, port)
    if chapter14.running_poller is not None:  # else (at start-up) the loop's first turn connects
        connect()


def promote() -> None:
    """REPLICAOF NO ONE: a master again. Our history goes on under a new
    id, the old one kept as replid2 (Redis's replicationUnsetMaster)."""
    global LINK, has_history
    drop_link()
    LINK, has_history = None, False
    STREAM.proxying = False
    STREAM.create_backlog()
    STREAM.shift_id()


def disconnect_blocked_clients() -> None:
    """Clients blocked on a master must not wait on a replica: each gets
    Redis's -UNBLOCKED and is closed (disconnectAllBlockedClients)."""
    blocked = []
    for record in list(chapter17.parked.values()):
        chapter17.unpark(record)
        blocked.append(record.conn)
    for conn in blocked + take_waiting_clients():
        conn.blocked = False
        conn.outgoing.error(UNBLOCKED)
        conn.closing = True
        chapter14.clients_pending_write[id(conn)] = conn


take_waiting_clients: Any = list  # set by the master's side: the clients blocked in WAIT, no longer waiting


# --- the link: connect, handshake ----------------------------------------------------------------


def connect() -> None:
    """Start a non-blocking connect() to the master."""
    assert LINK is not None
    LINK.next_try = time.monotonic() + CONNECT_EVERY
    try:
        address = socket.getaddrinfo(LINK.host, LINK.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(address[0], socket.SOCK_STREAM)
    except OSError as error:
        log.warning("Unable to connect to MASTER: %s", error)
        return
    sock.setblocking(False)
    code = sock.connect_ex(address[4])
    if code not in (0, errno.EINPROGRESS):
        log.warning("Unable to connect to MASTER: %s", os.strerror(code))
        sock.close()
        return
    LINK.sock, LINK.state, LINK.last_io = sock, "connecting", time.monotonic()
    chapter14.watch_socket(sock, select.POLLOUT, connected_or_not)


def connected_or_not(events: int) -> None:
    assert LINK is not None and LINK.sock is not None
    code = LINK.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        fail(f"Error condition on socket for SYNC: {os.strerror(code)}")
        return
    log.info("MASTER <-> REPLICA sync started")
    LINK.state = "handshake"
    chapter14.watch_socket(LINK.sock, select.POLLIN, readable)
    send_step(encode_command(b"PING"), pong)


def send_step(command: bytes, on_reply: Any) -> None:
    """Send one handshake command; `on_reply(line)` reads its reply. The
    commands are short: the kernel's buffer takes them whole."""
    assert LINK is not None and LINK.sock is not None
    try:
        LINK.sock.sendall(command)
    except OSError as error:
        fail(f"Error writing to the MASTER: {error}")
        return
    LINK.steps.append(on_reply)


def pong(line: bytes) -> None:
    if line.startswith(b"-") and not line.startswith(PING_ERRORS_ACCEPTED):
        fail(f"Error reply to PING from master: '{line.decode(errors='replace')}'")
        return
    if SETTINGS.masterauth:
        credentials = [SETTINGS.masteruser] if SETTINGS.masteruser else []
        send_step(encode_command(b"AUTH", *credentials, SETTINGS.masterauth), authenticated)
    else:
        send_replconf()


def authenticated(line: bytes) -> None:
    if line.startswith(b"-"):
        fail(f"Unable to AUTH to MASTER: {line.decode(errors='replace')}")
        return
    send_replconf()


def send_replconf() -> None:
    port = chapter14.ADMIN.port
    send_step(encode_command(b"REPLCONF", b"listening-port", b"%d" % port), not_required)
    send_step(encode_command(b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"), capabilities_sent)


def not_required(line: bytes) -> None:
    """REPLCONF listening-port: a master that does not know it may refuse it; we go on (as Redis)."""
    if line.startswith(b"-"):
        log.info("(Non critical) Master does not understand REPLCONF listening-port: %s", line.decode(errors="replace"))


def capabilities_sent(line: bytes) -> None:
    if line.startswith(b"-"):
        log.info("(Non critical) Master does not understand REPLCONF capa: %s", line.decode(errors="replace"))
    if has_history and STREAM.backlog is not None:
        log.info("Trying a partial resynchronization (request %s:%d).", STREAM.replid, STREAM.offset + 1)
        send_step(encode_command(b"PSYNC", STREAM.replid, b"%d" % (STREAM.offset + 1)), psync_reply)
    else:
        send_step(encode_command(b"PSYNC", b"?", b"-1"), psync_reply)


def psync_reply(line: bytes) -> None:
    assert LINK is not None
    words = line.split()
    full = line.startswith(b"+FULLRESYNC") and len(words) == 3 and len(words[1]) == 40
    if full and parse_integer(words[2]) is not None:
        LINK.master_replid, LINK.master_offset = words[1].decode(errors="replace"), parse_integer(words[2])
        log.info("Full resync from master: %s:%d", LINK.master_replid, LINK.master_offset)
        LINK.state = "sync"
    elif line.startswith(b"+CONTINUE"):
        log.info("Successful partial resynchronization with master.")
        if len(words) > 1 and len(words[1]) == 40:
            STREAM.continue_as(words[1].decode(errors="replace"))
        attach(bytes(LINK.received))
    elif line.startswith((b"-NOMASTERLINK", b"-LOADING")):  # the master cannot serve yet: the next try
        fail(f"Master is currently unable to PSYNC but should be in the future: {line.decode(errors='replace')}")
    else:
        fail(f"Unexpected reply to PSYNC from master: {line.decode(errors='replace')}")


# --- reading from the master: replies, then the snapshot -----------------------------------------


def readable(events: int) -> None:
    """The link is readable, in the handshake or the transfer. A reply or a
    snapshot we cannot use costs the link, never the server."""
    try:
        read_from_master()
    except Exception:
        log.exception("internal error on the link to the master; dropping it")
        if LINK is not None:
            fail("the link to the master is dropped")


def read_from_master() -> None:
    assert LINK is not None and LINK.sock is not None
    try:
        data = LINK.sock.recv(READ_BYTES)
    except BlockingIOError:
        return
    except OSError as error:
        fail(f"Error reading from the MASTER: {error}")
        return
    if not data:
        fail("Master closed the connection")
        return
    chapter14.ADMIN.traffic.net_input_bytes += len(data)
    LINK.last_io = time.monotonic()
    if LINK.state == "sync" and LINK.transfer is not None:
        receive_snapshot(data)
        return
    LINK.received += data
    while LINK is not None and LINK.sock is not None and LINK.state in ("handshake", "sync") \
            and LINK.transfer is None and (end := LINK.received.find(b"\n")) >= 0:  # fmt: skip
        line = bytes(LINK.received[:end]).rstrip(b"\r")
        del LINK.received[: end + 1]
        if not line:
            continue  # an empty line: the master keeps the link alive while it prepares a reply or the snapshot
        if LINK.state == "handshake":
            if LINK.steps:
                LINK.steps.pop(0)(line)
        else:
            start_transfer(line)
    if LINK is not None and LINK.transfer is not None and LINK.received:
        rest = bytes(LINK.received)
        LINK.received.clear()
        receive_snapshot(rest)
    elif LINK is not None and len(LINK.received) > MAX_REPLY_LINE:
        fail(f"Bad protocol from MASTER: a reply of more than {MAX_REPLY_LINE} bytes")


def start_transfer(header: bytes) -> None:
    """`$<length>` or `$EOF:<mark>`: the snapshot follows."""
    assert LINK is not None
    if header.startswith(b"-"):
        fail(f"MASTER aborted replication with an error: {header.decode(errors='replace')}")
        return
    size = parse_integer(header[1:]) if header.startswith(b"$") else None
    is_eof = header.startswith(b"$EOF:") and len(header) == 5 + EOF_MARK_LENGTH
    if not is_eof and (size is None or size < 0):
        fail(f"Bad protocol from MASTER, the first byte is not '$': {header[:64]!r}")
        return
    directory = chapter16.settings.dir
    path = directory / f"temp-{int(time.time())}.{os.getpid()}.rdb"
    try:
        file = open(path, "wb")
    except OSError as error:
        fail(f"Opening the temp file needed for MASTER <-> REPLICA synchronization: {error}")
        return
    LINK.transfer = Transfer(path, file, None if is_eof else size, eof_mark=header[5:] if is_eof else b"")
    log.info("MASTER <-> REPLICA sync: receiving %s",
             "streamed RDB from master with EOF" if is_eof else f"{size} bytes from master to disk")  # fmt: skip
    if size == 0:
        snapshot_received(b"")


def receive_snapshot(data: bytes) -> None:
    """Write what arrived; at the end, load it. Bytes after the snapshot are the stream's first."""
    assert LINK is not None and LINK.transfer is not None
    transfer = LINK.transfer
    try:
        if transfer.size is not None:
            taken = min(len(data), transfer.size - transfer.received)
            transfer.file.write(data[:taken])
            transfer.received += taken
            if transfer.received == transfer.size:
                snapshot_received(data[taken:])
            return
        # Ended by the mark: hold back the last bytes until more come or they are the mark.
        buffered = transfer.tail + data
        transfer.received += len(data)
        if buffered.endswith(transfer.eof_mark):
            transfer.file.write(buffered[:-EOF_MARK_LENGTH])
            snapshot_received(b"")
            return
        transfer.file.write(buffered[:-EOF_MARK_LENGTH])
        transfer.tail = buffered[-EOF_MARK_LENGTH:]
    except OSError as error:
        fail(f"Failed trying to write the temp DB to disk: {error}")


def snapshot_received(rest: bytes) -> None:
    """Replace dump.rdb with it, load it, and take the master's history (Redis's readSyncBulkPayload)."""
    assert LINK is not None and LINK.transfer is not None
    transfer = LINK.transfer
    try:
        transfer.file.flush()
        os.fsync(transfer.file.fileno())
        transfer.file.close()
        stop_snapshot_child()
        os.replace(transfer.path, chapter16.settings.rdb_path)
        data = chapter16.settings.rdb_path.read_bytes()
    except OSError as error:
        fail(f"Failed trying to rename the temp DB into dump.rdb: {error}")
        return
    LINK.transfer = None
    log.info("MASTER <-> REPLICA sync: Flushing old data")
    STREAM.drop_replicas()  # they copied the old data: they must copy the new
    empty_keyspace()
    started = time.monotonic()
    try:
        reader = RdbReader(data, verify_checksum=chapter16.settings.rdbchecksum)
        loaded = snapshots.load_rdb_records(reader, "the master's snapshot", keep_expired=True)
    except (RdbError, ValueError, KeyError, OverflowError) as error:  # what a damaged dump can raise while read
        empty_keyspace()
        fail(f"Failed trying to load the MASTER synchronization DB from disk: {error}")
        return
    log.info("MASTER <-> REPLICA sync: Loaded %d keys in %.2f s", loaded, time.monotonic() - started)
    STREAM.follow(LINK.master_replid, LINK.master_offset)
    restart_append_only()
    attach(rest)
    log.info("MASTER <-> REPLICA sync: Finished with success")


def stop_snapshot_child() -> None:
    """A background save of the old data would overwrite the new dump.rdb,
    or send our replicas what they must copy anew: stop it (Redis's killRDBChild)."""
    child = snapshots.child
    if child is not None and child.kind in ("rdb", "rdb-socket"):
        snapshots.stop_child(tell=True)  # the replicas waiting for it learn it failed


def empty_keyspace() -> None:
    """Every key goes, freed by the worker; every watched key is touched (Redis's emptyData)."""
    reply = ReplyBuffer()
    chapter14.flushdb([b"async"], reply)
    chapter18.touch_watched_keys(b"flushall", COMMANDS.commands[b"flushall"], [], reply, 0)


def restart_append_only() -> None:
    """With an AOF, the new data must be in it: a rewrite now, or once the running child ends."""
    append_only = chapter16.append_only
    if append_only.aof is None:
        return
    if snapshots.child is None:
        append_only.start_aof_rewrite()
    else:
        append_only.rewrite_scheduled = True


# --- connected: the master client ------------------------------------------------------------------


def attach(rest: bytes) -> None:
    """The link becomes chapter 14's client: the master's commands run as
    any client's, their replies cut (master_command_processed)."""
    assert LINK is not None and LINK.sock is not None
    global has_history
    sock = LINK.sock
    chapter14.unwatch_socket(sock)
    LINK.received.clear()
    conn = chapter14.add_client(sock, chapter14.running_poller, chapter14.running_clients)
    client = chapter21.clients.get(conn)
    if client is not None:
        # Not a client that connected to us: no password, no ACL, no protected mode (Redis's user NULL).
        client.authenticated, client.user = True, b"(superuser)"
        conn.closing = False
        conn.outgoing.clear()
    LINK.conn, LINK.state, has_history = conn, "connected", True
    send_ack()  # at once: a master that streamed the snapshot waits for it to put us online
    if rest:
        conn.parser.feed(rest)
        chapter14.execute_requests(conn)


def master_command_processed(conn: Any, request: list[bytes], reply_start: int) -> None:
    """After each request (chapter 14's command_processed_tasks): from the
    master, its reply is cut, our offset advances by its bytes, and the
    same bytes go on to our replicas (Redis's commandProcessed)."""
    if LINK is None or conn is not LINK.conn:
        return
    del conn.outgoing[reply_start:]
    if LINK.ack_requested:  # REPLCONF GETACK: the offset before it
        LINK.ack_requested = False
        send_ack()
    STREAM.feed(encode_command(*request))


def ack_requested() -> None:
    """REPLCONF GETACK, if from our master: answered after it ran (master_command_processed)."""
    if LINK is not None and chapter14.current_client is LINK.conn:
        LINK.ack_requested = True


def send_ack() -> None:
    assert LINK is not None and LINK.conn is not None
    LINK.last_ack = time.monotonic()
    LINK.conn.outgoing += encode_command(b"REPLCONF", b"ACK", b"%d" % STREAM.offset)
    chapter14.clients_pending_write[id(LINK.conn)] = LINK.conn


def master_closed(conn: Any) -> None:
    """chapter 14's close_tasks: the master client gone. What we hold is
    kept, as our history: the next link asks to continue it."""
    if LINK is not None and conn is LINK.conn:
        log.info("Connection with master lost.")
        LINK.conn, LINK.sock, LINK.state = None, None, "connect"
        LINK.down_since, LINK.next_try = time.time(), time.monotonic() + CONNECT_EVERY


def fail(reason: str) -> None:
    """The handshake or the transfer failed: close, and try again in a second."""
    assert LINK is not None
    log.warning("%s", reason)
    drop_link()
    LINK.state = "connect"
    LINK.next_try = time.monotonic() + CONNECT_EVERY


def drop_link() -> None:
    """Close the link in whatever state it is."""
    assert LINK is not None
    if LINK.conn is not None:
        chapter21.disconnect(LINK.conn)  # closed in before_sleep; master_closed will not see it as ours
        LINK.conn = None
    elif LINK.sock is not None:
        chapter14.unwatch_socket(LINK.sock)
        LINK.sock.close()
    if LINK.transfer is not None:
        LINK.transfer.file.close()
        LINK.transfer.path.unlink(missing_ok=True)
        LINK.transfer = None
    LINK.sock = None
    LINK.received.clear()
    LINK.steps.clear()
    if LINK.state == "connected":
        LINK.down_since = time.time()


def replication_cron() -> None:
    """Each loop iteration (chapter 14's cron_tasks): try to connect, time
    out a link that went silent (repl-timeout), send REPLCONF ACK."""
    if LINK is None:
        return
    now = time.monotonic()
    if LINK.state == "connect":
        if now >= LINK.next_try:
            connect()
    elif LINK.state != "connected":
        if now - LINK.last_io > SETTINGS.timeout:
            fail(f"Timeout connecting to the MASTER ({LINK.state})")
    elif LINK.conn is not None:
        if now - LINK.conn.last_active > SETTINGS.timeout:
            fail("MASTER timeout: no data nor PING received...")
        elif now - LINK.last_ack >= ACK_EVERY:
            send_ack()


def next_cron_ms() -> int | None:
    """chapter 14's timers: a replica's loop wakes at least every second, and when the next try is due."""
    if LINK is None:
        return None
    if LINK.state == "connect":
        return max(0, math.ceil((LINK.next_try - time.monotonic()) * 1000))
    return 1000


# --- the rules of a replica --------------------------------------------------------------------------


def expired_key_rule() -> str:
    """chapter 14's expired_key_rules: a master deletes; a replica's master
    client sees the key (its DEL comes), other clients see nothing."""
    if LINK is None:
        return "delete"
    return "keep" if is_master_client(chapter14.current_client) else "hide"


def refuse_writes(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """A write check (chapter 14's write_checks): a read-only replica takes writes from its master only."""
    conn = chapter14.current_client
    if LINK is not None and SETTINGS.read_only and conn is not None and conn is not LINK.conn:
        out.error("READONLY You can't write against a read only replica.")
        return True
    return False


def refuse_stale(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """A check (chapter 14's checks): with replica-serve-stale-data no, a
    replica whose link is down runs only the commands flagged stale."""
    if LINK is None or SETTINGS.serve_stale_data or LINK.state == "connected":
        return False
    if "stale" in spec.flags:
        transaction = chapter18.transactions.get(chapter14.current_client) if name == b"exec" else None
        if transaction is None or all("stale" in queued[1].flags for queued in transaction.queued):
            return False  # an EXEC is refused if a command it queued would be
    out.error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
    return True


def role(out: ReplyBuffer) -> None:
    """ROLE on a replica: slave, its master, the link's state, the offset applied (-1 while not connected)."""
    assert LINK is not None
    out.array(5)
    out.bulk(b"slave")
    out.bulk(LINK.host.encode())
    out.integer(LINK.port)
    out.bulk(LINK.state.encode())  # the states are named as ROLE names them
    out.integer(STREAM.offset if LINK.conn is not None else -1)


def info_fields() -> dict[str, object]:
    """INFO replication's lines for a replica, between role and connected_slaves, as Redis prints them."""
    assert LINK is not None
    conn = LINK.conn
    offset = STREAM.offset if has_history else 1
    fields: dict[str, object] = {
        "master_host": LINK.host,
        "master_port": LINK.port,
        "master_link_status": "up" if LINK.state == "connected" else "down",
        "master_last_io_seconds_ago": int(time.monotonic() - conn.last_active) if conn is not None else -1,
        "master_sync_in_progress": int(LINK.state == "sync"),
        "slave_read_repl_offset": offset + (conn.parser.buffered() if conn is not None else 0),
        "slave_repl_offset": offset,
    }
    transfer = LINK.transfer
    if LINK.state == "sync":
        size = transfer.size if transfer is not None and transfer.size is not None else -1  # -1: ends with a mark
        received = transfer.received if transfer is not None else 0
        fields |= {
            "master_sync_total_bytes": size,
            "master_sync_read_bytes": received,
            "master_sync_left_bytes": size - received,
            "master_sync_perc": f"{received / size * 100 if size > 0 else 0:.2f}",
            "master_sync_last_io_seconds_ago": int(time.monotonic() - LINK.last_io),
        }
    if LINK.state != "connected":
        fields["master_link_down_since_seconds"] = int(time.time() - LINK.down_since)
    fields |= {
        "slave_priority": SETTINGS.priority,
        "slave_read_only": int(SETTINGS.read_only),
        "replica_announced": int(SETTINGS.announced),
    }
    return fields


def master_flag(conn: Any) -> str:
    """chapter 21's more_client_flags: the master client is flagged M."""
    return "M" if is_master_client(conn) else ""


def master_class(conn: Any) -> str | None:
    """chapter 19's other_client_classes: the master client's type, which has no output limit."""
    return "master" if is_master_client(conn) else None


def parse_replicaof(words: list[str]) -> tuple[str, int] | None:
    """--replicaof host port, or --replicaof "host port" (both as redis-server takes them)."""
    parts = " ".join(words).split()
    if len(parts) != 2 or not parts[1].isdigit() or not 0 <= int(parts[1]) <= 65535:
        return None
    return parts[0], int(parts[1])


def wire(config: Any) -> None:
    """Register into the seams of the chapters before, and the settings."""
    add_boolean, add_integer, add = config.add_boolean, config.add_integer, config.add
    chapter14.command_processed_tasks.append(master_command_processed)
    chapter14.close_tasks.append(master_closed)
    chapter14.cron_tasks.append(replication_cron)
    chapter14.timers.append(next_cron_ms)
    chapter14.expired_key_rules.append(expired_key_rule)
    COMMANDS.write_checks.insert(0, refuse_writes)
    COMMANDS.checks.append(refuse_stale)
    chapter21.more_client_flags.append(master_flag)
    chapter21.chapter19.other_client_classes.append(master_class)
    for attribute, names in (("read_only", ("replica-read-only", "slave-read-only")),
                             ("serve_stale_data", ("replica-serve-stale-data", "slave-serve-stale-data"))):
        for config_name in names:
            add_boolean(config_name, lambda attribute=attribute: getattr(SETTINGS, attribute),
                        lambda value, attribute=attribute: setattr(SETTINGS, attribute, value))  # fmt: skip
    add_boolean("replica-announced", lambda: SETTINGS.announced, lambda value: setattr(SETTINGS, "announced", value))
    add_integer("repl-timeout", lambda: SETTINGS.timeout, lambda value: setattr(SETTINGS, "timeout", value), minimum=1)
    for name in ("replica-priority", "slave-priority"):
        add_integer(name, lambda: SETTINGS.priority, lambda value: setattr(SETTINGS, "priority", value),
                    maximum=2**31 - 1)  # fmt: skip
    for name in ("masterauth", "masteruser"):
        add(name, lambda name=name: getattr(SETTINGS, name).decode(errors="surrogateescape"),
            lambda value, name=name: setattr(SETTINGS, name, value))  # fmt: skip
    for name in ("replicaof", "slaveof"):  # set by REPLICAOF or at start-up only, as Redis's
        add(name, lambda: f"{LINK.host} {LINK.port}" if LINK is not None else "")


def add_options(parser: Any) -> None:
    parser.add_argument("--replicaof", "--slaveof", nargs="+", metavar="HOST PORT",
                        help='start as a replica of HOST PORT ("HOST PORT" in one argument too, as redis-server)')
    parser.add_argument("--replica-read-only", choices=["yes", "no"], default="yes",
                        help="refuse writes from clients while a replica (default: yes)")
    parser.add_argument("--replica-serve-stale-data", choices=["yes", "no"], default="yes",
                        help="serve reads while the link to the master is down (default: yes)")
    parser.add_argument("--repl-timeout", type=int, default=60, metavar="SECONDS",
                        help="a silent master (or replica) is dropped after this long (default: 60)")
    parser.add_argument("--masterauth", default="", metavar="PASSWORD", help="the password to give the master")
    parser.add_argument("--masteruser", default="", metavar="USER", help="the user to give the master")
    parser.add_argument("--replica-priority", type=int, default=100, metavar="N",
                        help="Sentinel promotes the replica with the lowest, never 0 (default: 100)")


def configure(options: Any, fail_start: Any) -> None:
    SETTINGS.read_only = options.replica_read_only == "yes"
    SETTINGS.serve_stale_data = options.replica_serve_stale_data == "yes"
    SETTINGS.timeout, SETTINGS.priority = options.repl_timeout, options.replica_priority
    SETTINGS.masterauth = options.masterauth.encode(errors="surrogateescape")
    SETTINGS.masteruser = options.masteruser.encode(errors="surrogateescape")
    if options.replicaof:
        master = parse_replicaof(options.replicaof)
        if master is None:
            fail_start(f"--replicaof wants a host and a port, not {' '.join(options.replicaof)!r}")
        follow(*master, known_history=False)
