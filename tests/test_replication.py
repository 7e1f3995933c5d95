"""Chapter 22 on: replication with real Redis on the other side.

Real redis-server started with `--replicaof` our server must end with the
same keys, values and TTLs (compared through each type's read commands),
after a full copy and then a stream of writes; a link cut and restored is
a partial resynchronisation (+CONTINUE), unless the backlog no longer
holds what the replica missed.
"""

from __future__ import annotations

import random
import time

import pytest
import redis

from common.resp import encode_command
from tests.support import launch, real_redis_on, state

pytestmark = [pytest.mark.since(22), pytest.mark.readme("A replica of ours")]


@pytest.fixture(autouse=True)
def diskless_at_once(server):
    """A full copy goes diskless, as Redis's default, but without its 5 s wait for more replicas."""
    with server.redis() as client:
        client.config_set("repl-diskless-sync-delay", 0)


def info(client: redis.Redis, section: str) -> dict:
    return client.info(section)


def wait_until(condition, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def in_step(master: redis.Redis, replica: redis.Redis) -> bool:
    """The replica is online and has applied everything the master streamed."""
    replication = info(replica, "replication")
    return replication.get("master_link_status") == "up" and \
        replication["slave_repl_offset"] == info(master, "replication")["master_repl_offset"]  # fmt: skip


def settle(master: redis.Redis, replica: redis.Redis, what: str) -> None:
    """Wait until the short-lived keys have expired on the master and the replica has applied their DELs."""
    time.sleep(0.05)
    wait_until(lambda: not master.keys("brief:*") and in_step(master, replica), timeout=60, what=what)


def fill(client: redis.Redis, keys: int, seed: int) -> None:
    """Every type, some keys with a TTL, pipelined."""
    rng = random.Random(seed)
    pipe = client.pipeline(transaction=False)
    for n in range(keys):
        kind = n % 5
        key = f"k:{seed}:{n}"
        if kind == 0:
            pipe.set(key, rng.randbytes(rng.randint(0, 40)))
        elif kind == 1:
            pipe.rpush(key, *[rng.randint(0, 999) for _ in range(rng.randint(1, 12))])
        elif kind == 2:
            pipe.hset(key, mapping={f"f{i}": rng.random() for i in range(rng.randint(1, 8))})
        elif kind == 3:
            pipe.sadd(key, *[rng.choice([rng.randint(0, 99), f"m{rng.randint(0, 99)}"]) for _ in range(rng.randint(1, 9))])
        else:
            pipe.zadd(key, {f"m{i}": rng.random() for i in range(rng.randint(1, 9))})
        if n % 7 == 0:
            pipe.pexpire(key, rng.randint(3_600_000, 36_000_000))  # none expires during the test
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()


def mixed_writes(client: redis.Redis, count: int, seed: int) -> None:
    """Writes of every kind on the keys fill() made, relative TTLs and short-lived keys among them."""
    rng = random.Random(seed)
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        key = f"k:0:{rng.randrange(2000)}"
        choice = n % 9
        if choice == 0:
            pipe.set(f"new:{n}", n, ex=rng.randint(100, 1000))
        elif choice == 1:
            pipe.delete(key)
        elif choice == 2:
            pipe.lpop(f"k:0:{5 * rng.randrange(400) + 1}")
        elif choice == 3:
            pipe.hincrbyfloat(f"k:0:{5 * rng.randrange(400) + 2}", "f0", 1.5)
        elif choice == 4:
            pipe.srem(f"k:0:{5 * rng.randrange(400) + 3}", f"m{rng.randint(0, 99)}")
        elif choice == 5:
            pipe.zincrby(f"k:0:{5 * rng.randrange(400) + 4}", 2, "m1")
        elif choice == 6:
            pipe.set(f"brief:{n}", "x", px=rng.randint(1, 30))  # expires on the master: a DEL follows
        elif choice == 7:
            pipe.incr("counter")
        else:
            pipe.expire(key, rng.randint(100, 1000))
    pipe.execute()


@pytest.mark.heavy
def test_real_redis_copies_every_type_then_follows_the_writes(server, tmp_path):
    """A full copy of 100,000 keys of every type with TTLs, then a mixed load:
    the same keys, values and absolute TTLs on both."""
    with server.redis() as ours:
        fill(ours, 100_000, seed=0)
        replica_process = real_redis_on(tmp_path, "--replicaof", "127.0.0.1", str(server.port))
        try:
            with replica_process.redis() as replica:
                mixed_writes(ours, 3000, seed=1)  # some arrive during the copy, some after
                settle(ours, replica, "the replica to catch up")  # short-lived keys expire on the master: DELs follow
                mixed_writes(ours, 300, seed=2)
                settle(ours, replica, "the replica to catch up again")
                assert ours.dbsize() == replica.dbsize() > 90_000
                assert state(ours) == state(replica)
                assert info(ours, "stats")["sync_full"] == 1
                assert info(ours, "replication")["slave0"]["state"] == "online"
        finally:
            replica_process.stop()


def test_a_cut_link_resumes_from_the_backlog(server, tmp_path):
    """CLIENT KILL TYPE replica under writes: the replica reconnects with
    PSYNC from its offset and gets only what it missed (+CONTINUE)."""
    with server.redis() as ours:
        ours.flushall()
        replica_process = real_redis_on(tmp_path, "--replicaof", "127.0.0.1", str(server.port))
        try:
            with replica_process.redis() as replica:
                fill(ours, 2000, seed=3)
                wait_until(lambda: in_step(ours, replica), what="the first copy")
                before = info(ours, "stats")
                for round_ in range(3):
                    assert ours.client_kill_filter(_type="replica") == 1
                    mixed_writes(ours, 200, seed=10 + round_)
                    settle(ours, replica, "the partial resynchronisation")
                after = info(ours, "stats")
                assert after["sync_full"] == before["sync_full"]
                assert after["sync_partial_ok"] == before["sync_partial_ok"] + 3
                assert state(ours) == state(replica)
        finally:
            replica_process.stop()


def test_a_replica_that_missed_more_than_the_backlog_gets_a_full_copy(server, tmp_path):
    with server.redis() as ours:
        ours.flushall()
        ours.config_set("repl-backlog-size", "16kb")
        replica_process = real_redis_on(tmp_path, "--replicaof", "127.0.0.1", str(server.port))
        try:
            with replica_process.redis() as replica:
                wait_until(lambda: in_step(ours, replica), what="the first copy")
                before = info(ours, "stats")
                replica_process.process.send_signal(19)  # SIGSTOP: the replica hears nothing for a while
                try:
                    ours.client_kill_filter(_type="replica")
                    ours.set("big", "x" * 40_000)  # more than the backlog holds
                finally:
                    replica_process.process.send_signal(18)  # SIGCONT
                wait_until(lambda: in_step(ours, replica), what="the new full copy")
                stats = info(ours, "stats")
                assert (stats["sync_full"] - before["sync_full"], stats["sync_partial_err"] - before["sync_partial_err"]) \
                    == (1, 1)  # fmt: skip
                assert replica.get("big") == b"x" * 40_000
                backlog = info(ours, "replication")
                assert backlog["repl_backlog_histlen"] <= 16 * 1024
        finally:
            ours.config_set("repl-backlog-size", "1mb")
            replica_process.stop()


def test_role_replconf_and_info_replication_as_redis(server, tmp_path):
    """A master without replicas, then with one: ROLE and INFO replication
    as Redis prints them; REPLCONF's errors as Redis's."""
    (tmp_path / "reference").mkdir()
    reference = real_redis_on(tmp_path / "reference")
    try:
        for process in (server, reference):
            with process.connect() as client:
                assert client.command("REPLCONF", "listening-port") == b"-ERR syntax error\r\n"
                assert client.command("REPLCONF", "nope", "1") == b"-ERR Unrecognized REPLCONF option: nope\r\n"
                assert client.command("REPLCONF", "listening-port", "7000", "capa", "eof") == b"+OK\r\n"
                assert client.command("REPLCONF", "ip-address", "x" * 300) == \
                    b"-ERR REPLCONF ip-address provided by replica instance is too long: 300 bytes\r\n"  # fmt: skip
        with server.redis() as ours:
            replica_process = real_redis_on(tmp_path, "--replicaof", "127.0.0.1", str(server.port),
                                            "--replica-announce-ip", "10.9.8.7")  # fmt: skip
            try:
                with replica_process.redis() as replica:
                    ours.set("x", 1)
                    wait_until(lambda: in_step(ours, replica), what="the copy")
                    wait_until(lambda: info(ours, "replication")["slave0"]["offset"]
                               == info(ours, "replication")["master_repl_offset"], what="the replica's ACK")
                    role = ours.execute_command("ROLE")
                    assert role[0] == b"master" and role[1] == info(ours, "replication")["master_repl_offset"]
                    assert role[2] == [[b"10.9.8.7", str(replica_process.port).encode(), str(role[1]).encode()]]
                    fields = info(ours, "replication")
                    assert fields["connected_slaves"] == 1 and fields["repl_backlog_active"] == 1
                    assert fields["master_replid"] == info(replica, "replication")["master_replid"]
                    flags = [line for line in ours.execute_command("CLIENT", "LIST", "TYPE", "replica").split(b"\n") if line]
                    assert len(flags) == 1 and b" flags=S " in flags[0]
            finally:
                replica_process.stop()
    finally:
        reference.stop()


def test_a_snapshot_that_cannot_be_written_costs_the_replica_a_retry_not_the_server(server, tmp_path):
    """The directory gone, the background save fails: the replica is let go
    (and comes back), the master serves on; once the directory is back,
    the copy succeeds."""
    directory = tmp_path / "master"
    directory.mkdir()
    master = launch(server, directory, "--save", "", "--repl-diskless-sync", "no")  # through dump.rdb
    replica_dir = tmp_path / "replica"
    replica_dir.mkdir()
    try:
        with master.redis() as ours:
            ours.set("kept", "yes")
            directory.rmdir()
            replica_process = real_redis_on(replica_dir, "--replicaof", "127.0.0.1", str(master.port))
            try:
                with replica_process.redis() as replica:
                    wait_until(lambda: info(ours, "stats")["sync_full"] >= 2, what="two failed copies")
                    assert ours.ping() and info(replica, "replication")["master_link_status"] == "down"
                    directory.mkdir()
                    wait_until(lambda: in_step(ours, replica), what="the copy once the directory is back")
                    assert replica.get("kept") == b"yes"
            finally:
                replica_process.stop()
    finally:
        master.stop()


def test_min_replicas_to_write_refuses_writes_without_good_replicas(server, tmp_path):
    """min-replicas-to-write N: a write needs N replicas that acknowledged
    within min-replicas-max-lag seconds, or it gets Redis's -NOREPLICAS; a
    read always runs. INFO counts the good replicas, after connected_slaves."""
    (tmp_path / "reference").mkdir()
    reference = real_redis_on(tmp_path / "reference")
    try:
        with reference.connect() as theirs:
            theirs.command("CONFIG", "SET", "min-replicas-to-write", "1")
            refusal = theirs.command("SET", "x", "1")
        assert refusal == b"-NOREPLICAS Not enough good replicas to write.\r\n"
    finally:
        reference.stop()
    with server.redis() as ours:
        ours.config_set("min-replicas-max-lag", 2)
        replica_process = real_redis_on(tmp_path, "--replicaof", "127.0.0.1", str(server.port))
        try:
            with replica_process.redis() as replica, server.connect() as raw:
                wait_until(lambda: in_step(ours, replica), what="the copy")
                ours.config_set("min-replicas-to-write", 1)
                assert raw.command("SET", "x", "1") == b"+OK\r\n"
                fields = list(info(ours, "replication"))
                assert fields[:4] == ["role", "connected_slaves", "min_slaves_good_slaves", "slave0"]
                ours.config_set("min-replicas-to-write", 2)
                assert raw.command("SET", "x", "2") == refusal
                assert raw.command("GET", "x") == b"$1\r\n1\r\n"
                ours.config_set("min-replicas-to-write", 1)
                replica_process.process.send_signal(19)  # SIGSTOP: its ACKs stop
                try:
                    wait_until(lambda: raw.command("SET", "x", "3") == refusal, timeout=10, what="the lag to show")
                    assert info(ours, "replication")["min_slaves_good_slaves"] == 0
                finally:
                    replica_process.process.send_signal(18)  # SIGCONT
                wait_until(lambda: raw.command("SET", "x", "4") == b"+OK\r\n", what="the replica back in step")
        finally:
            ours.config_set("min-replicas-to-write", 0)
            replica_process.stop()


def linked(process) -> bool:
    with process.redis() as client:
        return info(client, "replication").get("master_link_status") == "up"


def test_a_full_copy_through_the_disk_or_straight_to_the_sockets(server, tmp_path):
    """repl-diskless-sync no: the snapshot saved, then sent with its length;
    yes: relayed from the child as it writes, ended by a mark, the writes
    made meanwhile sent once the replica acknowledged; two replicas
    arriving within repl-diskless-sync-delay share one child."""
    with server.redis() as ours:
        ours.flushall()
        fill(ours, 3000, seed=7)
        try:
            for diskless, delay in (("no", 0), ("yes", 1)):
                ours.config_set("repl-diskless-sync", diskless)
                ours.config_set("repl-diskless-sync-delay", delay)
                forks = info(ours, "stats")["total_forks"]
                replicas = []
                for number in range(2):
                    (tmp_path / f"{diskless}{number}").mkdir()
                    replicas.append(real_redis_on(tmp_path / f"{diskless}{number}", "--replicaof", "127.0.0.1",
                                                  str(server.port)))  # fmt: skip
                try:
                    seed, deadline = 20, time.monotonic() + 30
                    while not all(linked(process) for process in replicas):
                        assert time.monotonic() < deadline, f"no link up (diskless {diskless})"
                        mixed_writes(ours, 20, seed=seed)  # writes while the copies are made and sent
                        seed += 1
                    for process in replicas:
                        with process.redis() as replica:
                            settle(ours, replica, f"the copy (diskless {diskless})")
                            assert state(ours) == state(replica)
                    if diskless == "yes":
                        assert info(ours, "stats")["total_forks"] == forks + 1
                finally:
                    for process in replicas:
                        process.stop()
        finally:
            ours.config_set("repl-diskless-sync", "yes")
            ours.config_set("repl-diskless-sync-delay", 0)


def test_a_snapshot_bigger_than_the_replica_output_limit_still_arrives(server, tmp_path):
    """client-output-buffer-limit's replica class limits the stream queued
    for a replica, not its snapshot (Redis sends that apart): a 3 MB copy
    reaches a replica whose class is limited to 1 MB, either way."""
    with server.redis() as ours:
        ours.flushall()
        limits = ours.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
        pipe = ours.pipeline(transaction=False)
        for n in range(3000):
            pipe.set(f"big:{n}", bytes([n % 251]) * 1000)
        pipe.execute()
        try:
            ours.config_set("client-output-buffer-limit", "replica 1mb 512kb 10")
            for diskless in ("no", "yes"):
                ours.config_set("repl-diskless-sync", diskless)
                (tmp_path / diskless).mkdir()
                replica_process = real_redis_on(tmp_path / diskless, "--replicaof", "127.0.0.1", str(server.port))
                try:
                    with replica_process.redis() as replica:
                        wait_until(lambda: in_step(ours, replica), what=f"the copy (diskless {diskless})")
                        assert replica.dbsize() == 3000
                finally:
                    replica_process.stop()
        finally:
            ours.config_set("client-output-buffer-limit", limits)
            ours.config_set("repl-diskless-sync", "yes")


def test_clients_in_wait_are_blocked_clients_as_in_redis(server, real_redis):
    """A client in WAIT is a blocked client: INFO counts it (blocked_clients,
    and clients_in_timeout_table with a timeout), CLIENT UNBLOCK answers it
    with the count so far, or with Redis's error. With no replica, WAIT 1
    waits for ever (or its timeout)."""

    def run(target) -> list:
        with target.connect() as first, target.connect() as second, target.connect() as observer:
            ids = [int(client.command("CLIENT", "ID")[1:-2]) for client in (first, second)]
            first.send(encode_command("WAIT", "1", "0"))
            second.send(encode_command("WAIT", "1", "60000"))
            wait_until(lambda: b"blocked_clients:2" in observer.command("INFO", "clients"), what="two clients in WAIT")
            counted = [line for line in observer.command("INFO", "clients").split(b"\r\n") if b"timeout_table" in line]
            return [counted, observer.command("CLIENT", "UNBLOCK", ids[0]), first.read_reply(),
                    observer.command("CLIENT", "UNBLOCK", ids[1], "ERROR"), second.read_reply(),
                    observer.command("CLIENT", "UNBLOCK", ids[0]), b"blocked_clients:0" in observer.command("INFO", "clients"),
                    first.command("PING")]  # fmt: skip

    assert run(server) == run(real_redis)
