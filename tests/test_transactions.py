"""Chapter 18 on: MULTI, EXEC, DISCARD, WATCH, UNWATCH, RESET.

Replies are compared byte for byte with real Redis's, in RESP2 and RESP3:
queueing, every error, EXECABORT, WATCH with writes from another client,
with expiry and with flushes. Then what only the chapter's own server
shows: isolation from blocked clients, many clients retrying optimistic
transactions, the AOF's MULTI ... EXEC units (written, torn by a crash,
read by real Redis), and the bound on what one client's transaction holds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from common.aof import CommandReader
from common.resp import encode_command
from tests.support import RawClient, ReplyMismatch, assert_same_replies, launch, real_redis_on, state

pytestmark = [pytest.mark.since(18), pytest.mark.readme("MULTI, EXEC, DISCARD")]


def test_queueing_errors_and_no_rollback_match_redis(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("ZADD", "z", "1", "m"), ("GET", "a"), ("EXEC",),
        # A runtime error fails alone: the others ran, and stay.
        ("MULTI",), ("SET", "s", "text"), ("INCR", "s"), ("ZADD", "s", "1", "m"), ("APPEND", "s", "!"), ("EXEC",),
        ("GET", "s"),
        # A command refused while queueing aborts the whole transaction.
        ("MULTI",), ("SET", "b", "1"), ("NOSUCH", "x"), ("SET", "c", "1"), ("EXEC",), ("EXISTS", "b", "c"),
        ("MULTI",), ("SET", "b"), ("EXEC",), ("MULTI",), ("MULTI", "extra"), ("EXEC",),
        ("MULTI",), ("SAVE",), ("SHUTDOWN",), ("EXEC",),
        # Errors about the transaction itself.
        ("EXEC",), ("DISCARD",), ("MULTI",), ("MULTI",), ("WATCH", "a"), ("EXEC",),
        ("EXEC", "extra"), ("MULTI",), ("EXEC", "extra"), ("EXEC",), ("DISCARD", "x"),
        ("MULTI",), ("DISCARD",), ("DISCARD",), ("WATCH",), ("UNWATCH", "x"),
        # Empty, read-only, and commands that act on the connection inside one.
        ("MULTI",), ("EXEC",), ("MULTI",), ("PING",), ("ECHO", "hi"), ("GET", "missing"), ("DBSIZE",), ("EXEC",),
        ("MULTI",), ("UNWATCH",), ("PING",), ("EXEC",),
        ("MULTI",), ("SET", "r", "1"), ("RESET",), ("EXEC",), ("GET", "r"),
        ("MULTI",), ("BZPOPMIN", "nothing", "0"), ("BZMPOP", "0", "1", "nothing", "MIN"), ("ZADD", "q", "1", "x"),
        ("BZPOPMAX", "q", "0"), ("EXEC",),
        ("MULTI",), ("FLUSHALL",), ("SET", "after", "1"), ("EXEC",), ("DBSIZE",),
    )  # fmt: skip


def test_reset_clears_the_transaction_the_watches_and_resp3(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("SET", "w", "1"), ("WATCH", "w"), ("MULTI",), ("RESET",), ("GET", "w"), ("GET", "missing"),  # RESP2 again
    )
    ours, theirs = empty_pair
    for client in empty_pair:  # the watch is gone: another write does not fail the next EXEC
        client.command("SET", "w", "2")
    assert_same_replies(ours, theirs, ("MULTI",), ("GET", "w"), ("EXEC",), ("RESET", "x"))


@pytest.fixture
def two_pairs(server, real_redis, empty_pair):
    """empty_pair, and a second connection to each server: (ours, ours2), (theirs, theirs2)."""
    ours, theirs = empty_pair
    with server.connect() as ours2, real_redis.connect() as theirs2:
        yield (ours, ours2), (theirs, theirs2)


def same_scenario(two_pairs, *steps: tuple[int, tuple]) -> None:
    """Each step is (which client: 0 or 1, command), run on both servers; replies identical."""
    (ours, ours2), (theirs, theirs2) = two_pairs
    for who, command in steps:
        expected = (theirs, theirs2)[who].command(*command)
        received = (ours, ours2)[who].command(*command)
        if received != expected:
            raise ReplyMismatch(command, expected, received, "real Redis")


@pytest.mark.readme("WATCH")
def test_watch_fails_exec_when_another_client_writes(two_pairs):
    same_scenario(
        two_pairs,
        (0, ("SET", "x", "1")), (0, ("WATCH", "x", "y", "z")), (1, ("GET", "x")), (0, ("MULTI",)),
        (0, ("INCR", "x")), (0, ("EXEC",)),  # a read by someone else is no change
        (0, ("WATCH", "x")), (1, ("INCR", "x")), (0, ("MULTI",)), (0, ("INCR", "x")), (0, ("EXEC",)), (0, ("GET", "x")),
        (0, ("WATCH", "y")), (1, ("SET", "y", "new")), (0, ("MULTI",)), (0, ("GET", "y")), (0, ("EXEC",)),  # created
        (0, ("WATCH", "y")), (1, ("DEL", "y")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),  # deleted
        (0, ("WATCH", "nope")), (1, ("DEL", "nope")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),  # no change
        (0, ("WATCH", "x")), (1, ("EXPIRE", "x", "100")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),
        (0, ("WATCH", "x")), (1, ("PERSIST", "x")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),
        (0, ("WATCH", "z")), (1, ("ZADD", "z", "1", "a")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),
        (0, ("WATCH", "z")), (1, ("ZMPOP", "2", "other", "z", "MIN")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),
        (0, ("SET", "r1", "v")), (0, ("WATCH", "r2")), (1, ("RENAME", "r1", "r2")), (0, ("MULTI",)), (0, ("EXEC",)),
        (0, ("WATCH", "m1")), (1, ("MSET", "m0", "a", "m1", "b")), (0, ("MULTI",)), (0, ("EXEC",)),
        # UNWATCH, DISCARD and EXEC forget the watches and a touch.
        (0, ("WATCH", "x")), (1, ("INCR", "x")), (0, ("UNWATCH",)), (0, ("MULTI",)), (0, ("GET", "x")), (0, ("EXEC",)),
        (0, ("WATCH", "x")), (1, ("INCR", "x")), (0, ("MULTI",)), (0, ("DISCARD",)), (0, ("MULTI",)),
        (0, ("GET", "x")), (0, ("EXEC",)),
        (0, ("WATCH", "x")), (0, ("MULTI",)), (0, ("EXEC",)), (1, ("INCR", "x")), (0, ("MULTI",)), (0, ("GET", "x")),
        (0, ("EXEC",)),
        # A transaction's own writes do not fail it; one aborted by an error still unwatches.
        (0, ("WATCH", "x")), (0, ("MULTI",)), (0, ("INCR", "x")), (0, ("INCR", "x")), (0, ("EXEC",)),
        (0, ("WATCH", "x")), (0, ("MULTI",)), (0, ("NOSUCH",)), (0, ("EXEC",)), (1, ("INCR", "x")),
        (0, ("MULTI",)), (0, ("GET", "x")), (0, ("EXEC",)),
    )  # fmt: skip


@pytest.mark.readme("WATCH")
def test_flushes_touch_only_the_watched_keys_that_existed(two_pairs):
    for flush in ("FLUSHALL", "FLUSHDB"):
        same_scenario(
            two_pairs,
            (0, ("SET", "there", "1")), (0, ("WATCH", "there")), (1, (flush,)), (0, ("MULTI",)), (0, ("PING",)),
            (0, ("EXEC",)),
            (0, ("WATCH", "absent")), (1, (flush,)), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),
            (0, ("MSET", "a", "1", "b", "2")), (0, ("WATCH", "b", "a", "c")), (1, (flush, "ASYNC")), (0, ("PING",)),
            (0, ("MULTI",)), (0, ("EXEC",)),
        )  # fmt: skip


@pytest.mark.readme("WATCH")
def test_expiry_of_a_watched_key_fails_exec_a_stale_key_does_not(two_pairs):
    """A key that expires while watched changed; one already expired when
    WATCH came was not there, and its deletion changes nothing."""
    same_scenario(two_pairs, (0, ("SET", "soon", "v", "PX", "100")), (0, ("WATCH", "soon")))
    time.sleep(0.25)  # expired by now, deleted or not yet
    same_scenario(two_pairs, (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)))
    same_scenario(two_pairs, (0, ("SET", "stale", "v", "PX", "1")))
    time.sleep(0.05)
    same_scenario(
        two_pairs,
        (0, ("WATCH", "stale")), (1, ("EXISTS", "stale")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),
        (0, ("SET", "later", "v", "EX", "100")), (0, ("WATCH", "later")), (0, ("MULTI",)), (0, ("PING",)), (0, ("EXEC",)),
    )  # fmt: skip


@pytest.mark.readme("Blocking commands and transactions")
def test_exec_is_isolated_from_blocked_clients(server, real_redis):
    """What EXEC writes wakes blocked clients after the transaction: a key
    filled and emptied inside it wakes nobody."""

    def scenario(target) -> list[bytes]:
        with target.connect() as blocked, target.connect() as writer:
            writer.command("DEL", "bq")
            blocked.send(encode_command("BZPOPMIN", "bq", "0"))
            wait_for_blocked_clients(writer, 1)
            replies = [writer.command("MULTI"), writer.command("ZADD", "bq", "1", "a"), writer.command("DEL", "bq"),
                       writer.command("EXEC")]  # fmt: skip
            replies += [writer.command("MULTI"), writer.command("ZADD", "bq", "1", "a", "2", "b", "3", "c"),
                        writer.command("ZPOPMIN", "bq"), writer.command("EXEC")]  # fmt: skip
            replies += [blocked.read_reply(), writer.command("ZRANGE", "bq", "0", "-1")]
            return replies

    assert scenario(server) == scenario(real_redis)


def wait_for_blocked_clients(client: RawClient, count: int) -> None:
    deadline = time.monotonic() + 5
    while b"blocked_clients:%d\r\n" % count not in client.command("INFO", "clients"):
        assert time.monotonic() < deadline, f"never {count} blocked clients"
        time.sleep(0.01)


@pytest.mark.readme("WATCH")
def test_concurrent_optimistic_increments_lose_nothing(server, capsys):
    """20 clients each add 1 to one counter 50 times, with WATCH / GET /
    MULTI / SET / EXEC, retrying when EXEC fails: the counter ends at exactly 1,000."""
    clients, increments = 20, 50
    retries = [0] * clients
    errors: list[BaseException] = []
    with server.redis() as client:
        client.delete("counter")

    def work(number: int) -> None:
        try:
            with redis.Redis(port=server.port, socket_timeout=10) as connection:
                for _ in range(increments):
                    while True:
                        with connection.pipeline() as pipe:
                            try:
                                pipe.watch("counter")
                                value = int(pipe.get("counter") or 0)
                                pipe.multi()
                                pipe.set("counter", value + 1)
                                pipe.execute()
                                break
                            except redis.WatchError:
                                retries[number] += 1
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[0]
    with server.redis() as client:
        assert client.get("counter") == b"%d" % (clients * increments)
    with capsys.disabled():
        print(f"\n  {clients} clients x {increments} WATCH increments: {sum(retries)} retries")


# --- the append-only file: a transaction is one unit -------------------------------------------


def logged_commands(directory: Path) -> list[list[bytes]]:
    manifest = (directory / "appendonlydir" / "appendonly.aof.manifest").read_text()
    incr = [line.split()[1] for line in manifest.splitlines() if "type i" in line][-1]
    with open(directory / "appendonlydir" / incr, "rb") as log:
        return [args for args in CommandReader(log, incr).commands() if args[0].lower() != b"select"]


@pytest.mark.readme("The AOF: a transaction is one unit")
def test_the_aof_wraps_a_transaction_of_several_changes(server, tmp_path):
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
    with ours.redis() as client:
        client.set("before", 1)
        pipe = client.pipeline()  # redis-py sends MULTI ... EXEC
        pipe.set("a", 1).incr("a").get("a").zadd("z", {"m": 1}).delete("missing")
        assert pipe.execute() == [True, 2, b"2", 1, 0]
        client.pipeline().set("single", 1).get("single").execute()  # one change: not wrapped, as Redis
        client.pipeline().get("a").execute()  # no change: nothing logged
        client.pipeline().delete("missing").execute()
        expected = state(client)
    ours.crash()
    names = [[arg.lower() for arg in args[:1]] + args[1:2] for args in logged_commands(tmp_path)]
    assert names == [
        [b"set", b"before"], [b"multi"], [b"set", b"a"], [b"incrby", b"a"], [b"zadd", b"z"], [b"exec"],
        [b"set", b"single"],
    ]  # fmt: skip
    again = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with again.redis() as client:
        assert state(client) == expected
    again.stop()
    theirs = real_redis_on(tmp_path, "--appendonly", "yes")  # and real Redis reads the same files
    with theirs.redis() as client:
        assert state(client) == expected
    theirs.stop()


@pytest.mark.readme("The AOF: a transaction is one unit")
def test_a_transaction_torn_by_a_crash_is_dropped_whole_at_load(server, tmp_path):
    """The log ends inside a MULTI ... EXEC unit, at every possible byte: the
    unit is dropped, the file truncated before its MULTI, and what came
    before it loads (Redis does the same, with aof-load-truncated yes)."""
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
    with ours.redis() as client:
        client.set("kept", "yes")
        client.pipeline().set("t1", 1).set("t2", 2).execute()
    ours.crash()
    incr = next((tmp_path / "appendonlydir").glob("*.incr.aof"))
    whole = incr.read_bytes()
    unit_start = whole.index(encode_command("MULTI"))
    unit_end = len(whole)
    for cut in sorted({unit_start + 1, unit_start + 10, *range(unit_start + 15, unit_end, 7), unit_end - 1}):
        incr.write_bytes(whole[:cut])
        again = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
        with again.redis() as client:
            assert sorted(client.keys("*")) == [b"kept"], f"cut at byte {cut} of {unit_end}"
        assert f"truncatingitatbyte{unit_start}," in "".join(again.output().split())  # the warning, however it wraps
        again.stop()
        now = incr.read_bytes()  # truncated before the MULTI; the restarted server may append its SELECT
        assert now[:unit_start] == whole[:unit_start] and now[unit_start:] in (b"", encode_command("SELECT", "0"))


@pytest.mark.readme("The append-only file", chapter=16)
@pytest.mark.since(16)
def test_a_real_redis_aof_with_transactions_loads(server, tmp_path):
    """Real Redis wraps a transaction in MULTI ... EXEC in its AOF: chapter
    16 on replays such a unit whole."""
    theirs = real_redis_on(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    with theirs.redis() as client:
        client.set("plain", 1)
        client.pipeline().set("a", 1).zadd("z", {"m": 2}).expire("a", 1000).execute()  # chapter 16's commands
        expected = state(client)
    theirs.stop()
    assert [b"multi"] in [[args[0].lower()] for args in logged_commands(tmp_path)]
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with ours.redis() as client:
        assert state(client) == expected
    ours.stop()


@pytest.mark.heavy
@pytest.mark.readme("The AOF: a transaction is one unit")
def test_kill_9_during_transactions_leaves_each_whole_or_absent(server, tmp_path):
    """Writers run transactions of three SETs with appendfsync always; kill
    -9 lands at a random moment. After restart every acknowledged EXEC is
    there whole, and no transaction is there in part."""
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
    acknowledged: list[int] = [0, 0, 0, 0]

    def write(number: int) -> None:
        try:
            with redis.Redis(port=ours.port, socket_timeout=10) as client:
                while True:
                    done = acknowledged[number]
                    pipe = client.pipeline()
                    for part in "abc":
                        pipe.set(f"w{number}:{done}:{part}", done)
                    pipe.execute()
                    acknowledged[number] = done + 1
        except (redis.ConnectionError, redis.TimeoutError):
            pass

    writers = [threading.Thread(target=write, args=(number,), daemon=True) for number in range(4)]
    for writer in writers:
        writer.start()
    time.sleep(1.5)
    ours.crash()
    for writer in writers:
        writer.join(10)
    assert all(acknowledged), f"a writer got nothing acknowledged: {acknowledged}"
    again = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with again.redis() as client:
        held = {key.decode() for key in client.keys("w*")}
    again.stop()
    for number, count in enumerate(acknowledged):
        for done in range(count + 1):  # the one in flight may be there, whole
            parts = {f"w{number}:{done}:{part}" in held for part in "abc"}
            assert len(parts) == 1, f"writer {number}'s transaction {done} is there in part"
            assert done == count or parts == {True}, f"writer {number}'s acknowledged transaction {done} is lost"


# --- what one client's transaction may hold ----------------------------------------------------


@pytest.mark.readme("What a transaction may hold")
def test_a_transaction_queue_is_bounded_by_the_query_buffer_limit(server):
    with server.redis() as admin:
        limit = admin.config_get("client-query-buffer-limit")["client-query-buffer-limit"]
        admin.config_set("client-query-buffer-limit", "1mb")
        try:
            rss_before = server.memory()
            with server.connect() as client:
                assert client.command("MULTI") == b"+OK\r\n"
                value = b"x" * 1000
                client.send(b"".join(encode_command("SET", b"q%d" % n, value) for n in range(5000)))
                replies = client.read_replies(5000)
                assert replies[0] == b"+QUEUED\r\n"
                assert any(reply.startswith(b"-ERR Transaction discarded") for reply in replies)
                assert client.command("EXEC").startswith(b"-EXECABORT")
                assert admin.dbsize() == 0 or not admin.exists("q0")
                batches = [[b"%d:" % batch + b"k" * 300 + b"%d" % n for n in range(1000)] for batch in range(5)]
                replies = [client.command("WATCH", *keys) for keys in batches]  # each 300 KB, under the limit
                assert replies[0] == b"+OK\r\n"
                assert any(reply.startswith(b"-ERR too many watched keys") for reply in replies)
            assert server.memory() - rss_before < 50 * 1024 * 1024
        finally:
            admin.config_set("client-query-buffer-limit", limit)


@pytest.mark.readme("What a transaction may hold")
def test_a_client_closed_inside_a_transaction_leaves_nothing_behind(server):
    with server.connect() as writer:
        for round_ in range(50):
            with server.connect() as gone:
                gone.command("WATCH", "shared", b"own%d" % round_)
                gone.command("MULTI")
                gone.command("SET", "shared", "from a closed client")
        writer.command("SET", "shared", "mine")  # touches nobody, fails nothing
        assert writer.command("WATCH", "shared") == b"+OK\r\n"
        assert writer.command("MULTI") == b"+OK\r\n"
        assert writer.command("GET", "shared") == b"+QUEUED\r\n"
        assert writer.command("EXEC") == b"*1\r\n$4\r\nmine\r\n"


@pytest.mark.readme("The AOF: a transaction is one unit")
def test_bgsave_and_bgrewriteaof_inside_exec_are_scheduled(server, tmp_path):
    """A fork inside EXEC would catch the transaction halfway: as Redis, they start after it."""
    ours = launch(server, tmp_path, "--save", "", "--appendonly", "yes")
    with ours.connect() as client:
        for command, reply, result in (
            ("BGREWRITEAOF", b"+Background append only file rewriting scheduled\r\n",
             tmp_path / "appendonlydir" / "appendonly.aof.2.base.rdb"),
            ("BGSAVE", b"+Background saving scheduled\r\n", tmp_path / "dump.rdb"),
        ):  # fmt: skip
            client.command("MULTI"), client.command("SET", "a", "1"), client.command(command)
            assert client.command("EXEC") == b"*2\r\n+OK\r\n" + reply
            deadline = time.monotonic() + 10
            while not result.exists() or b"_in_progress:1" in client.command("INFO", "persistence"):
                assert time.monotonic() < deadline, f"the scheduled {command} never ran"
                time.sleep(0.05)
    ours.stop()
