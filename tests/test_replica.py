"""Chapter 22 on: our server as a replica, of real Redis and of itself.

Ours started with `--replicaof` a real redis-server must end with the same
keys, values and TTLs after a full copy and a stream of writes, resume a
cut link with a partial resynchronisation, follow Redis's rules for a
replica (read-only, no expiry of its own) and answer ROLE, INFO, WAIT and
REPLICAOF as a real replica does. A scripted master checks the protocol
byte by byte: the handshake, replies never sent, the offset in REPLCONF ACK.
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import redis

from common.resp import RequestParser, encode_command
from tests.support import launch, real_redis_on, require_tool, state
from tests.test_replication import diskless_at_once, fill, in_step, info, mixed_writes, wait_until  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.since(22), pytest.mark.readme("Ours as a replica")]


def real_master(directory):
    """A real Redis to copy from, without its 5 s wait for more replicas before a diskless copy."""
    directory.mkdir(exist_ok=True)
    return real_redis_on(directory, "--repl-diskless-sync-delay", "0")


def settle_real(master: redis.Redis, replica: redis.Redis, writes: int, what: str) -> None:
    """A real Redis master deletes expired keys a few at a time: the
    short-lived keys of mixed_writes(master, writes) are read, so that it
    deletes them now (DELs sent); then wait until the replica applied everything."""
    time.sleep(0.05)  # their time is up
    pipe = master.pipeline(transaction=False)
    for n in range(6, writes, 9):  # mixed_writes' brief:<n>
        pipe.exists(f"brief:{n}")
    pipe.execute()
    wait_until(lambda: in_step(master, replica), timeout=60, what=what)


def replica_of(server, directory, master_port: int, *args: str):
    directory.mkdir(exist_ok=True)
    return launch(server, directory, "--save", "", "--replicaof", f"127.0.0.1 {master_port}", *args)


@pytest.mark.heavy
def test_ours_copies_real_redis_then_follows_and_resumes_cut_links(server, tmp_path):
    """100,000 keys of every type with TTLs copied from real Redis
    (diskless, its default: the snapshot streamed, ended by an EOF mark),
    then a mixed load; the link cut from either side under writes is each
    time a partial resynchronisation; at the end, the same keyspace."""
    master_process = real_master(tmp_path / "master")
    try:
        with master_process.redis() as master:
            fill(master, 100_000, seed=0)
            ours = replica_of(server, tmp_path / "ours", master_process.port)
            try:
                with ours.redis() as replica:
                    mixed_writes(master, 3000, seed=1)
                    settle_real(master, replica, 3000, "the copy and the writes after it")
                    assert master.dbsize() == replica.dbsize() > 90_000
                    before = info(master, "stats")
                    for round_ in range(4):
                        if round_ % 2:
                            assert replica.client_kill_filter(_type="master") == 1
                        else:
                            assert master.client_kill_filter(_type="replica") == 1
                        mixed_writes(master, 200, seed=10 + round_)
                        settle_real(master, replica, 200, "the partial resynchronisation")
                    after = info(master, "stats")
                    assert (after["sync_full"], after["sync_partial_ok"]) == \
                        (before["sync_full"], before["sync_partial_ok"] + 4)  # fmt: skip
                    assert state(master) == state(replica)
            finally:
                ours.stop()
    finally:
        master_process.stop()


def test_a_replica_refuses_writes_and_never_expires_a_key_itself(server, tmp_path):
    """As a real replica of the same master: -READONLY for a client's
    write; a key past its TTL reads as missing but stays (DBSIZE counts
    it) until the master's DEL; replica-read-only no lets writes in."""
    master_process = real_redis_on(tmp_path, "--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0")
    (tmp_path / "theirs").mkdir()
    theirs = real_redis_on(tmp_path / "theirs", "--replicaof", "127.0.0.1", str(master_process.port))
    ours = replica_of(server, tmp_path / "ours", master_process.port)
    try:
        with master_process.redis() as master, ours.connect() as raw_ours, theirs.connect() as raw_theirs:
            master.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # only a read deletes it on the master
            master.set("brief", "x", px=200)
            for process in (ours, theirs):
                with process.redis() as replica:
                    wait_until(lambda: in_step(master, replica), what="the copy")
            time.sleep(0.3)
            for raw in (raw_ours, raw_theirs):
                assert raw.command("SET", "k", "v") == b"-READONLY You can't write against a read only replica.\r\n"
                assert raw.command("GET", "brief") == b"$-1\r\n"
                assert raw.command("DBSIZE") == b":1\r\n"  # expired, not deleted: the master decides
                assert raw.command("EXISTS", "brief") == b":0\r\n"
                assert raw.command("RANDOMKEY") == b"$5\r\nbrief\r\n"  # every key expired: one anyway, not deleted
                assert raw.command("DBSIZE") == b":1\r\n"
            assert master.get("brief") is None  # the master deletes it now, and sends DEL
            for process in (ours, theirs):
                with process.redis() as replica:
                    wait_until(lambda: replica.dbsize() == 0, what="the master's DEL")
            for raw in (raw_ours, raw_theirs):
                assert raw.command("CONFIG", "SET", "replica-read-only", "no") == b"+OK\r\n"
                assert raw.command("SET", "local", "1") == b"+OK\r\n"
                assert raw.command("CONFIG", "GET", "slave-read-only") == b"*2\r\n$15\r\nslave-read-only\r\n$2\r\nno\r\n"
            assert master.get("local") is None  # a replica's own writes stay its own
    finally:
        ours.stop()
        theirs.stop()
        master_process.stop()


def replication_fields(client: redis.Redis) -> list[str]:
    return list(info(client, "replication"))  # in the order printed


def test_role_info_and_replicaof_as_a_real_replica(server, tmp_path):
    """ROLE and INFO replication's fields (names and order) as a real
    replica of the same master prints them, linked and not; REPLICAOF's
    errors and replies; REPLICAOF NO ONE keeps the old history as replid2."""
    master_process = real_master(tmp_path / "master")
    (tmp_path / "theirs").mkdir()
    theirs = real_redis_on(tmp_path / "theirs", "--replicaof", "127.0.0.1", str(master_process.port))
    ours = replica_of(server, tmp_path / "ours", master_process.port)
    try:
        with master_process.redis() as master, ours.redis() as our_replica, theirs.redis() as their_replica:
            master.set("x", 1)
            for replica in (our_replica, their_replica):
                wait_until(lambda: in_step(master, replica), what="the copy")
            assert replication_fields(our_replica) == replication_fields(their_replica)
            offset = info(master, "replication")["master_repl_offset"]
            for replica in (our_replica, their_replica):
                assert replica.execute_command("ROLE") == [b"slave", b"127.0.0.1", master_process.port, b"connected", offset]
            with ours.connect() as raw_ours, theirs.connect() as raw_theirs:
                for raw in (raw_ours, raw_theirs):
                    assert raw.command("REPLICAOF", "127.0.0.1", "70000") == b"-ERR Invalid master port\r\n"
                    assert raw.command("SLAVEOF", "127.0.0.1", str(master_process.port)) == \
                        b"+OK Already connected to specified master\r\n"  # fmt: skip
                    assert raw.command("WAIT", "1", "0").startswith(b"-ERR WAIT cannot be used with replica instances.")
            master_process.process.send_signal(19)  # SIGSTOP: no reply to a new link's PING
            try:
                for replica in (our_replica, their_replica):
                    replica.execute_command("CLIENT", "KILL", "TYPE", "master")
                    wait_until(lambda: info(replica, "replication")["master_link_status"] == "down", what="link down")
                assert replication_fields(our_replica) == replication_fields(their_replica)  # with master_link_down_since_seconds
            finally:
                master_process.process.send_signal(18)
            history = info(our_replica, "replication")
            assert our_replica.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
            promoted = info(our_replica, "replication")
            assert promoted["role"] == "master"
            assert promoted["master_replid2"] == history["master_replid"] != promoted["master_replid"]
            assert promoted["second_repl_offset"] == history["master_repl_offset"] + 1
            assert our_replica.set("now", "writable")
    finally:
        ours.stop()
        theirs.stop()
        master_process.stop()


def test_chained_replicas_and_a_promotion_resume_without_a_full_copy(server, tmp_path):
    """Ours A, ours B replica of A, real Redis C replica of B: the same
    stream and offsets on all three. Then B is promoted and A follows B
    (what Sentinel does): both links resume partially (PSYNC2: B knows A's
    history as its replid2), and every write reaches every server."""
    a = launch(server, tmp_path, "--save", "", "--repl-diskless-sync-delay", "0")
    b = replica_of(server, tmp_path / "b", a.port, "--repl-diskless-sync-delay", "0")
    (tmp_path / "c").mkdir()
    c = real_redis_on(tmp_path / "c", "--replicaof", "127.0.0.1", str(b.port))
    try:
        with a.redis() as ra, b.redis() as rb, c.redis() as rc:
            fill(ra, 2000, seed=5)
            ra.rpush("order", *range(100))
            wait_until(lambda: in_step(ra, rb) and in_step(rb, rc), what="the chain in step")
            assert info(ra, "replication")["master_repl_offset"] == info(rc, "replication")["slave_repl_offset"]
            assert state(ra) == state(rb) == state(rc)
            assert rb.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
            rb.set("after", "promotion")
            assert ra.execute_command("REPLICAOF", "127.0.0.1", str(b.port)) == b"OK"
            wait_until(lambda: in_step(rb, ra) and in_step(rb, rc), what="A and C following B")
            stats = info(rb, "stats")
            assert (stats["sync_full"], stats["sync_partial_ok"]) == (1, 2)  # C's first copy; then C and A resumed
            assert ra.get("after") == rc.get("after") == b"promotion"
            assert state(ra) == state(rb) == state(rc)
    finally:
        c.stop()
        b.stop()
        a.stop()


def test_wait_counts_the_replicas_that_acknowledged(server, tmp_path):
    """WAIT n timeout after a write: at once when enough replicas
    acknowledged (a GETACK asks them), the count so far when the time is
    up; a stopped replica does not count."""
    with server.redis() as ours:
        ours.flushall()
        replica_process = real_redis_on(tmp_path, "--replicaof", "127.0.0.1", str(server.port))
        try:
            with replica_process.redis() as replica, server.connect() as raw:
                wait_until(lambda: in_step(ours, replica), what="the copy")
                assert raw.command("SET", "a", "1") == b"+OK\r\n"
                assert raw.command("WAIT", "1", "0") == b":1\r\n"
                assert raw.command("WAIT", "2", "200") == b":1\r\n"
                assert raw.command("WAIT", "x", "0") == b"-ERR value is not an integer or out of range\r\n"
                assert raw.command("WAIT", "1", "-1") == b"-ERR timeout is negative\r\n"
                replica_process.process.send_signal(19)
                try:
                    assert raw.command("SET", "b", "2") == b"+OK\r\n"
                    assert raw.command("WAIT", "1", "300") == b":0\r\n"
                    assert raw.command("PING") == b"+PONG\r\n"  # the connection goes on after a WAIT
                finally:
                    replica_process.process.send_signal(18)
                assert raw.command("WAIT", "1", "0") == b":1\r\n"
        finally:
            replica_process.stop()


# --- a scripted master: the protocol byte by byte ----------------------------------------------------


def read_command(conn: socket.socket, parser: RequestParser) -> list[bytes]:
    """One command from `conn` (what a replica sends its master), read with the project's request parser."""
    while (command := parser.next_request()) is None:
        data = conn.recv(4096)
        assert data, "the replica closed the link"
        parser.feed(data)
    return command


def snapshot_with_one_key(tmp_path) -> bytes:
    """A dump.rdb written by real Redis, holding greeting=hello."""
    directory = tmp_path / "snapshot"
    directory.mkdir()
    process = real_redis_on(directory)
    with process.redis() as client:
        client.set("greeting", "hello")
        client.save()
    process.stop()
    return (directory / "dump.rdb").read_bytes()


def test_the_handshake_the_silent_stream_and_getack_byte_by_byte(server, tmp_path):
    """A master played by the test: the replica's handshake in Redis's
    order (PING, REPLCONF listening-port, REPLCONF capa eof capa psync2,
    PSYNC ? -1); after +FULLRESYNC and the snapshot, the stream's commands
    get no reply; REPLCONF GETACK * is answered with the offset of every
    byte before it; then REPLICAOF NO ONE starts a new history from there."""
    snapshot = snapshot_with_one_key(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    replica = replica_of(server, tmp_path / "ours", listener.getsockname()[1])
    parser = RequestParser()
    try:
        conn, _ = listener.accept()
        conn.settimeout(10)
        with conn:
            assert read_command(conn, parser) == [b"PING"]
            conn.sendall(b"+PONG\r\n")
            assert read_command(conn, parser) == [b"REPLCONF", b"listening-port", str(replica.port).encode()]
            conn.sendall(b"+OK\r\n")
            assert read_command(conn, parser) == [b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]
            conn.sendall(b"+OK\r\n")
            assert read_command(conn, parser) == [b"PSYNC", b"?", b"-1"]
            replid = "8d5d0d3b6c1f2e4a9b7c6d5e4f3a2b1c0d9e8f7a"
            conn.sendall(b"+FULLRESYNC %s 100\r\n\n\n" % replid.encode())  # empty lines: a master keeping the link alive
            conn.sendall(b"$%d\r\n" % len(snapshot) + snapshot)
            assert read_command(conn, parser) == [b"REPLCONF", b"ACK", b"100"]  # at once, once loaded
            stream = encode_command("SELECT", "0") + encode_command("SET", "counter", "1") + encode_command("INCR", "counter") \
                + encode_command("PING")  # fmt: skip
            conn.sendall(stream + encode_command("REPLCONF", "GETACK", "*"))
            assert read_command(conn, parser) == [b"REPLCONF", b"ACK", str(100 + len(stream)).encode()]
            with replica.redis() as client:
                assert client.get("greeting") == b"hello" and client.get("counter") == b"2"
                fields = info(client, "replication")
                getack = len(encode_command("REPLCONF", "GETACK", "*"))
                assert (fields["master_replid"], fields["slave_repl_offset"]) == (replid, 100 + len(stream) + getack)
                assert client.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
                promoted = info(client, "replication")
                assert (promoted["master_replid2"], promoted["second_repl_offset"]) == (replid, 101 + len(stream) + getack)
            conn.settimeout(0.5)
            try:
                parser.feed(conn.recv(4096))  # only ACKs were ever sent, and the link is closed now
            except (TimeoutError, socket.timeout):
                pass
            while (command := parser.next_request()) is not None:
                assert command[:2] == [b"REPLCONF", b"ACK"], command
            assert not parser.buffered()
    finally:
        listener.close()
        replica.stop()


def test_redis_cli_replicaof_and_the_command_line_forms(server, tmp_path):
    """`--replicaof host port` (two arguments) as well as one: redis-cli sees a linked replica."""
    master_process = real_master(tmp_path / "master")
    (tmp_path / "ours").mkdir()
    ours = launch(server, tmp_path / "ours", "--save", "", "--replicaof", "127.0.0.1", str(master_process.port))
    try:
        with master_process.redis() as master, ours.redis() as replica:
            master.set("via", "two arguments")
            wait_until(lambda: in_step(master, replica), what="the copy")
            cli = require_tool("redis-cli")
            output = subprocess.run([cli, "-p", str(ours.port), "GET", "via"], capture_output=True, text=True).stdout
            assert output.strip() == "two arguments"
    finally:
        ours.stop()
        master_process.stop()


def test_a_master_that_sends_garbage_costs_the_link_not_the_server(server, tmp_path):
    """A damaged snapshot, then a reply line that never ends: each time the
    replica drops the link and tries again; it answers its clients all along."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    replica = replica_of(server, tmp_path / "ours", listener.getsockname()[1])
    try:
        for garbage in (b"+FULLRESYNC %s 0\r\n$10\r\nREDIS0010!" % (b"a" * 40), b"+" + b"x" * 200_000):
            conn, _ = listener.accept()
            conn.settimeout(10)
            with conn:
                parser = RequestParser()
                assert read_command(conn, parser) == [b"PING"]
                conn.sendall(b"+PONG\r\n")
                for _ in range(2):
                    read_command(conn, parser)  # REPLCONF listening-port, REPLCONF capa
                    conn.sendall(b"+OK\r\n")
                assert read_command(conn, parser)[0] == b"PSYNC"
                conn.sendall(garbage)
                conn.settimeout(5)
                try:
                    assert conn.recv(1024) == b""  # the replica closes the link
                except ConnectionResetError:
                    pass
            with replica.redis() as client:
                assert client.ping() and info(client, "replication")["master_link_status"] == "down"
    finally:
        listener.close()
        replica.stop()


def test_the_idle_timeout_spares_a_replica_and_its_master(server, tmp_path):
    """timeout 1 on both sides, and a stream with nothing in it for 3 s:
    the link stays up, as Redis never times out a replica or its master."""
    master = launch(server, tmp_path, "--save", "", "--repl-diskless-sync-delay", "0", "--idle-timeout", "1")
    replica = replica_of(server, tmp_path / "replica", master.port, "--idle-timeout", "1")
    try:
        with master.redis() as ours_master, replica.redis() as ours_replica:
            wait_until(lambda: in_step(ours_master, ours_replica), what="the copy")
            before = info(ours_master, "stats")["sync_partial_ok"], info(ours_master, "stats")["sync_full"]
            time.sleep(3)
            assert info(ours_replica, "replication")["master_link_status"] == "up"
            assert (info(ours_master, "stats")["sync_partial_ok"], info(ours_master, "stats")["sync_full"]) == before
            ours_master.set("still", "linked")
            wait_until(lambda: ours_replica.get("still") == b"linked", what="the write")
    finally:
        replica.stop()
        master.stop()
