"""Differential tests: the same bytes sent to a real redis-server and to a
chapter's server must get identical reply bytes back.

Each test states the first chapter whose commands it uses. In CI a missing
redis-server is a failure, not a skip.
"""

import pytest

from common.resp import encode_command
from tests.support import ConnectionClosed, RawClient, assert_same_replies


@pytest.mark.since(4)
@pytest.mark.readme("RESP instead of the book's length prefix")
def test_ping_echo_and_errors(pair):
    assert_same_replies(
        *pair,
        ("PING",),
        ("PING", "hello"),
        ("ping", "a", "b"),
        ("ECHO", b"\x00\r\nbinary"),
        ("ECHO",),
        ("NOSUCH",),
        ("nosuch", "with", "some", "args"),
        ("nosuch", "x" * 200, "y"),
    )


@pytest.mark.since(4)
@pytest.mark.parametrize(
    "raw",
    [
        b"PING\r\nECHO 'quoted arg' \"and \\x41 escapes\"\r\n\r\n",
        b"*0\r\n*-1\r\n" + encode_command("PING"),
        b"*1\r\n+PING\r\n",
        b"*x\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n$01\r\n",
        b"*01\r\n",
        b"*+1\r\n",
        b'ECHO "unbalanced\r\n',
        b"ECHO 'x'y\r\n",
        # Not here: lines over 64 KB. Redis rejects them only if they arrive
        # in more than one read; our parser always does (test_protocol.py).
    ],
)
@pytest.mark.readme("RESP instead of the book's length prefix")
def test_raw_input(pair, raw):
    """Inline commands and protocol errors: replies, and whether the server hangs up."""
    for client in pair:
        client.send(raw + encode_command("ECHO", "still open?"))
    ours, theirs = (replies_until_closed_or_open(client) for client in pair)
    assert ours == theirs


def replies_until_closed_or_open(client: RawClient) -> list[bytes]:
    """Replies up to the echo of "still open?", or to the server hanging up."""
    replies = []
    while True:
        try:
            replies.append(client.read_reply())
        except ConnectionClosed:
            return [*replies, b"<closed>"]
        if replies[-1] == b"$11\r\nstill open?\r\n":
            return replies


@pytest.mark.since(7)
@pytest.mark.readme("Commands")
def test_get_set_del(pair, key):
    assert_same_replies(
        *pair,
        ("GET", key()),
        ("SET", key(), "v1"),
        ("GET", key()),
        ("SET", key(), b"\x00\xff\r\n"),
        ("GET", key()),
        ("SET", key(), ""),
        ("GET", key()),
        ("DEL", key(), key(), key("b")),
        ("DEL", key()),
        ("GET",),
        ("GET", key(), "extra"),
        ("SET", key()),
        ("DEL",),
    )


@pytest.mark.since(9)
@pytest.mark.readme("New commands over the whole keyspace")
def test_keyspace_commands(empty_pair):
    assert_same_replies(
        *empty_pair,
        ("GET", "a"),
        ("SET", "a", "1"),
        ("SET", "b", "2"),
        ("SET", "h[e]llo", "3"),
        ("EXISTS", "a", "a", "nosuch"),
        ("TYPE", "a"),
        ("TYPE", "nosuch"),
        ("DBSIZE",),
        ("KEYS", "nomatch*"),
        ("KEYS", "[a]"),
        ("DEL", "a", "b", "h[e]llo"),
        ("KEYS", "*"),
        ("DBSIZE",),
        ("EXISTS",),
        ("TYPE",),
        ("KEYS",),
        ("DBSIZE", "x"),
        ("FLUSHALL", "x"),
        ("FLUSHDB", "SYNC"),
        ("HELLO", "4"),
        ("HELLO", "x"),
        ("HELLO", "3", "FOO"),  # errors: the protocol does not change
        ("HELLO", "3", "AUTH", "bob", "pw"),
    )
