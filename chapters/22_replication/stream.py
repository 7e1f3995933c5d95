"""Chapter 22: the replication stream, a server's history of writes.

Both sides of replication share it. A master makes it: every unit of
writes chapter 16 forms for the AOF, `SELECT 0` first. A replica receives
its master's and passes the very same bytes on to its own replicas
(chained replication), so that the offsets mean the same on all of them.

* The offset: the stream's length so far (master_repl_offset); a 40-hex
  replication id names this history. A replica that took its master's
  history over (a full copy, or a promotion) keeps the id it had as
  `replid2`, valid up to `second_offset`: PSYNC2, which lets the other
  replicas of a failed master continue from the promoted one.
* The backlog: the last `repl-backlog-size` bytes, from which a replica
  that lost its link resumes (+CONTINUE) instead of copying everything.
* The replicas: the clients that said PSYNC or SYNC, each with its state
  (waiting for its snapshot, or online), fed the stream as it grows.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from common.chapters import load_chapter
from common.resp import encode_command

chapter21 = load_chapter(21)  # clients: how one is let go
chapter19 = chapter21.chapter19  # client classes and their output limits
chapter14 = chapter21.chapter14  # connections waiting to be written

DEFAULT_BACKLOG_SIZE = 1024 * 1024  # repl-backlog-size
NO_REPLID = "0" * 40  # Redis's replid2 when there is no previous history


class Backlog:
    """The last `size` bytes of the stream (Redis's repl_backlog), and where
    they start: a replica that lost its link resumes from it."""

    def __init__(self, size: int, first_offset: int) -> None:
        self.size = size
        self.data = bytearray()
        self.first_offset = first_offset  # the stream offset of data[0]

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
    state: str = "wait_bgsave_start"  # then wait_bgsave_end, [wait_ack after a diskless copy,] online
    waiting: bytearray = field(default_factory=bytearray)  # the stream since the fork, until the snapshot is sent
    ack_offset: int = 0  # REPLCONF ACK
    ack_time: float = field(default_factory=time.monotonic)
    psync: bool = True  # PSYNC (a +FULLRESYNC line first) or the old SYNC (the snapshot alone)
    eof_capable: bool = False  # REPLCONF capa eof: it can take a snapshot of unknown length (diskless)
    diskless: bool = False  # its snapshot comes through the socket
    # Bytes of stream queued since its snapshot began: only these count
    # against the replica class's output limit (a snapshot, however big, does not).
    since_snapshot: int = sys.maxsize
    asked_at: float = field(default_factory=time.monotonic)


class Stream:
    """A server's history of writes, as its replicas receive it."""

    def __init__(self) -> None:
        self.replid = secrets.token_hex(20)
        self.replid2 = NO_REPLID  # the history this one continued (after a promotion)
        self.second_offset = -1  # up to where replid2's history is ours
        self.offset = 0  # master_repl_offset: bytes of stream so far
        self.backlog: Backlog | None = None  # made for the first replica (or by following a master), kept after
        self.backlog_size = DEFAULT_BACKLOG_SIZE
        self.selected_db = -1  # -1: the next write sends SELECT 0 first
        self.replicas: dict[Any, Replica] = {}  # connection -> its Replica, in the order they came
        # A replica's stream is its master's, passed on as received: it makes none of its own.
        self.proxying = False

    # chapter 16's unit listener: wants_units() and take_unit()

    def wants_units(self) -> bool:
        return self.backlog is not None and not self.proxying

    def take_unit(self, commands: list[list[bytes]]) -> None:
        data = bytearray()
        if self.selected_db != 0:
            data += encode_command(b"SELECT", b"0")
            self.selected_db = 0
        for command in commands:
            data += encode_command(*command)
        self.feed(bytes(data))

    def create_backlog(self) -> None:
        if self.backlog is None:
            self.backlog = Backlog(self.backlog_size, self.offset + 1)

    def feed(self, data: bytes) -> None:
        """Add to the stream: the backlog, then every replica, now or once its snapshot is sent."""
        assert self.backlog is not None
        self.backlog.add(data)
        self.offset += len(data)
        for replica in list(self.replicas.values()):
            if replica.state == "online":
                send(replica.conn, data)
            elif replica.state in ("wait_bgsave_end", "wait_ack"):
                replica.waiting += data

    def ping(self) -> None:
        """Every repl-ping-replica-period seconds, a PING in the stream: a replica hears from its master."""
        if self.replicas and not self.proxying:
            self.feed(encode_command(b"PING"))

    # --- changes of history ---

    def follow(self, replid: str, offset: int) -> None:
        """A full copy from a master: its history is ours now, from `offset`
        on; no other (Redis's readSyncBulkPayload). Our replicas must copy
        it anew, and no backlog of the old history may serve them."""
        self.drop_replicas()
        self.replid, self.offset = replid, offset
        self.replid2, self.second_offset = NO_REPLID, -1
        self.backlog = None
        self.create_backlog()

    def continue_as(self, replid: str) -> None:
        """The master continued us under a new id (it was promoted): ours
        becomes replid2, up to here. Our replicas reconnect to learn it."""
        if replid != self.replid:
            self.replid2, self.second_offset = self.replid, self.offset + 1
            self.replid = replid
            self.drop_replicas()
        self.create_backlog()

    def shift_id(self) -> None:
        """A replica promoted: a new history, which continues the old one
        (Redis's shiftReplicationId). A replica asking for the old one, up
        to this offset, may still resume."""
        self.replid2, self.second_offset = self.replid, self.offset + 1
        self.replid = secrets.token_hex(20)
        self.selected_db = -1
        self.drop_replicas()

    def drop_replicas(self) -> None:
        """Let every replica go: each connects again and asks anew (Redis's disconnectSlaves)."""
        for conn in list(self.replicas):
            self.drop(conn)

    def drop(self, conn: Any) -> None:
        self.replicas.pop(conn, None)
        chapter21.disconnect(conn)


STREAM = Stream()


def send(conn: Any, data: bytes) -> None:
    """Queue stream bytes to a replica; past its output limit (replica
    class), it is disconnected. What is left of a snapshot queued before
    them does not count: the stream bytes are the last ones queued."""
    conn.outgoing += data
    chapter14.clients_pending_write[id(conn)] = conn
    replica = STREAM.replicas.get(conn)
    if replica is not None:
        replica.since_snapshot += len(data)
        chapter19.output_limits.enforce(conn, "slave", min(len(conn.outgoing), replica.since_snapshot))
    else:
        chapter19.output_limits.enforce(conn, "slave")
