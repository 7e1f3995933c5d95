"""Chapter 22: a full copy straight to the replicas' sockets (repl-diskless-sync).

A full copy the plain way costs the disk twice: the child writes
dump.rdb, then the master reads it back to send it. With
`repl-diskless-sync yes` (Redis 7's default) the forked child writes the
snapshot into a pipe instead, and the master relays what comes out of it
to every replica waiting, as it comes.

* The child frames the snapshot itself: `$EOF:<40 random characters>\r\n`,
  the RDB, then the same 40 characters. Its length is not known in
  advance; the replica (which said REPLCONF capa eof) knows the end by the
  mark. A child that dies midway writes no mark, and its replicas are let
  go: they will ask again.
* The writes made since the fork wait until the replica has loaded the
  copy and says REPLCONF ACK (Redis's repl_start_cmd_stream_on_ack): a
  replica finds the mark at the end of what it read, so nothing may
  follow it too soon.
* `repl-diskless-sync-delay` (5 s): the master first waits that long, so
  that replicas arriving together share one child.
"""

from __future__ import annotations

import os
import secrets
import select
import time
from dataclasses import dataclass, field
from typing import Any

from common.chapters import load_chapter, load_chapter_module
from common.net import log

chapter21 = load_chapter(21)
chapter16 = chapter21.chapter16  # the child and the RDB writer
chapter14 = chapter21.chapter14  # the loop: the pipe is watched as a socket is
snapshots = chapter16.snapshots
stream = load_chapter_module(22, "stream")
STREAM = stream.STREAM

RELAY_BYTES = 64 * 1024  # read from the pipe per event: what the kernel's pipe buffer holds


@dataclass
class DisklessSettings:
    enabled: bool = True  # repl-diskless-sync
    delay: int = 5  # repl-diskless-sync-delay, seconds


SETTINGS = DisklessSettings()


@dataclass(eq=False)
class Transfer:
    """One child's snapshot, on its way to the replicas that wait for it."""

    pipe: Any  # the read end
    replicas: list[Any] = field(default_factory=list)


TRANSFER: Transfer | None = None  # the running child's


def wanted_for(waiting: list[Any]) -> bool:
    """Whether these replicas get the snapshot through the socket: all must understand the EOF mark."""
    return SETTINGS.enabled and all(replica.eof_capable for replica in waiting)


def may_start(waiting: list[Any]) -> bool:
    """The delay is over: the first of them has waited repl-diskless-sync-delay seconds."""
    first = min(replica.asked_at for replica in waiting)
    return time.monotonic() - first >= SETTINGS.delay


def start(waiting: list[Any]) -> bool:
    """Fork the child that writes the framed snapshot into a pipe; relay it from the loop."""
    global TRANSFER
    read_end, write_end = os.pipe()
    mark = secrets.token_hex(20).encode()

    def write_to_pipe() -> None:  # in the child
        os.close(read_end)
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(b"$EOF:%s\r\n" % mark)
            snapshots.write_rdb_to(pipe)
            pipe.write(mark)

    child = snapshots.start_child("rdb-socket", chapter16.settings.rdb_path, work=write_to_pipe)
    os.close(write_end)
    if child is None:
        os.close(read_end)
        return False
    os.set_blocking(read_end, False)
    for replica in waiting:
        replica.diskless = True
    transfer = TRANSFER = Transfer(os.fdopen(read_end, "rb", buffering=0), list(waiting))
    chapter14.watch_socket(transfer.pipe, select.POLLIN, lambda events: relay(transfer))
    log.info("starting a diskless copy to %d replica(s)", len(waiting))
    return True


def relay(transfer: Transfer) -> None:
    """The pipe is readable: pass what came to every replica of this transfer still connected."""
    try:
        data = os.read(transfer.pipe.fileno(), RELAY_BYTES)
    except BlockingIOError:
        return
    receivers = [replica for replica in transfer.replicas if STREAM.replicas.get(replica.conn) is replica]
    if data:
        for replica in receivers:
            replica.conn.outgoing += data  # a snapshot, not output the replica class limits (as Redis)
            chapter14.clients_pending_write[id(replica.conn)] = replica.conn
        return
    close_pipe(transfer)  # the child closed its end: all of it was relayed
    for replica in receivers:
        if replica.state == "wait_bgsave_end":
            replica.state = "wait_ack"  # the writes since the fork follow its first ACK


def close_pipe(transfer: Transfer) -> None:
    if not transfer.pipe.closed:
        chapter14.unwatch_socket(transfer.pipe)
        transfer.pipe.close()


def child_done(finished: Any, ok: bool) -> None:
    """chapter 16's finish_child for this kind. A child that succeeded may
    have left the end of its output in the pipe: the relay goes on to the
    end. One that failed sent no mark, and its replicas would wait in
    vain: let them go."""
    global TRANSFER
    transfer, TRANSFER = TRANSFER, None
    log.info("diskless copy %s", "done" if ok else "FAILED")
    if transfer is None or ok:
        return
    close_pipe(transfer)
    for replica in transfer.replicas:
        if STREAM.replicas.get(replica.conn) is replica and replica.state != "online":
            log.warning("replica %s: the diskless copy failed", replica.address)
            STREAM.drop(replica.conn)


def acknowledged(replica: Any) -> None:
    """Its first REPLCONF ACK after a diskless copy: it loaded it; the writes since the fork follow."""
    if replica.state == "wait_ack":
        replica.state = "online"
        stream.send(replica.conn, replica.waiting)
        replica.waiting.clear()
