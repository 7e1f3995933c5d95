"""Chapter 09 on: typed replies in RESP2 and RESP3 (HELLO), and the
commands that look at the keyspace as a whole."""

import pytest

pytestmark = [pytest.mark.since(9), pytest.mark.readme("Two encodings of the same types")]


def hello_fields(reply: bytes) -> dict[bytes, bytes]:
    """The fields of a HELLO reply (RESP2 flat array or RESP3 map), values as raw lines."""
    lines = reply.split(b"\r\n")
    values = [line for line in lines[1:] if line and line[:1] not in (b"$", b"*")]
    return dict(zip(values[0::2], values[1::2]))


def test_hello_switches_protocol(server, key):
    with server.connect() as client:
        assert client.command("GET", key()) == b"$-1\r\n"
        reply = client.command("HELLO", "3")
        assert reply.startswith(b"%7\r\n")
        fields = hello_fields(reply)
        assert fields[b"server"] == b"redis"
        assert fields[b"proto"] == b":3"
        assert client.command("GET", key()) == b"_\r\n"
        assert client.command("HELLO").startswith(b"%7\r\n")  # no argument: stays on 3
        reply = client.command("HELLO", "2")
        assert reply.startswith(b"*14\r\n")
        assert hello_fields(reply)[b"proto"] == b":2"
        assert client.command("GET", key()) == b"$-1\r\n"


def test_hello_gives_each_connection_its_own_id_and_protocol(server):
    with server.connect() as first, server.connect() as second:
        first_id = hello_fields(first.command("HELLO", "3"))[b"id"]
        second_id = hello_fields(second.command("HELLO"))[b"id"]
        assert first_id != second_id
        assert second.command("HELLO").startswith(b"*14\r\n")  # still RESP2


@pytest.mark.parametrize(
    "args, error",
    [
        (["4"], b"-NOPROTO unsupported protocol version\r\n"),
        (["x"], b"-ERR Protocol version is not an integer or out of range\r\n"),
        (["3", "FOO"], b"-ERR Syntax error in HELLO option 'FOO'\r\n"),
        (["3", "AUTH", "bob", "pw"], b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
        (["3", "SETNAME", "a b"], b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"),
    ],
)
def test_hello_errors_keep_the_protocol(server, args, error):
    with server.connect() as client:
        assert client.command("HELLO", *args) == error
        assert client.command("HELLO").startswith(b"*14\r\n")


def test_hello_auth_default_user_and_setname(server):
    with server.connect() as client:
        assert client.command("HELLO", "3", "AUTH", "default", "any", "SETNAME", "me").startswith(b"%7\r\n")


def test_exists_type_dbsize_keys_flush(server):
    with server.redis() as client:  # redis-py's defaults: RESP3 through HELLO 3
        client.flushall()
        client.set("user:a", "1")
        client.set("user:b", "2")
        client.set("other", "3")
        assert client.exists("user:a", "user:a", "missing") == 2
        assert client.type("user:a") == b"string"
        assert client.type("missing") == b"none"
        assert client.dbsize() == 3
        assert sorted(client.keys("user:*")) == [b"user:a", b"user:b"]
        assert sorted(client.keys("*")) == [b"other", b"user:a", b"user:b"]
        assert client.flushdb() is True
        assert client.dbsize() == 0
        assert client.keys("*") == []


def test_keys_while_the_hashtable_resizes(server):
    """KEYS sees every key exactly once, however the table is growing."""
    count = 5000
    with server.redis() as client:
        client.flushall()
        pipe = client.pipeline(transaction=False)
        for i in range(count):
            pipe.set(f"k{i}", i)
        pipe.execute()
        found = client.keys("k*")
        assert len(found) == count
        assert set(found) == {f"k{i}".encode() for i in range(count)}
        assert client.dbsize() == count
        client.flushall()
