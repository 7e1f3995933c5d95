"""Chapter 04 on: RESP framing, PING and ECHO, pipelining, inline commands
and protocol errors, over raw sockets."""

import pytest

from common.resp import encode_command

pytestmark = [pytest.mark.since(4), pytest.mark.readme("RESP instead of the book's length prefix")]


def test_ping(server):
    with server.connect() as client:
        assert client.command("PING") == b"+PONG\r\n"
        assert client.command("ping", "hello") == b"$5\r\nhello\r\n"


def test_echo_is_binary_safe(server):
    value = bytes(range(256)) + b"\r\n\x00end"
    with server.connect() as client:
        assert client.command("ECHO", value) == b"$%d\r\n%s\r\n" % (len(value), value)
        assert client.command("ECHO", "") == b"$0\r\n\r\n"


@pytest.mark.readme("Many requests per connection, pipelined")
def test_many_requests_on_one_connection(server):
    with server.connect() as client:
        for i in range(100):
            assert client.command("ECHO", str(i)) == b"$%d\r\n%d\r\n" % (len(str(i)), i)


@pytest.mark.readme("Many requests per connection, pipelined")
def test_request_split_byte_by_byte(server):
    request = encode_command("ECHO", "split anywhere") + encode_command("PING")
    with server.connect() as client:
        for i in range(len(request)):
            client.send(request[i : i + 1])
        assert client.read_replies(2) == [b"$14\r\nsplit anywhere\r\n", b"+PONG\r\n"]


@pytest.mark.readme("Many requests per connection, pipelined")
def test_thousand_pipelined_requests_in_one_write(server):
    count = 1000
    with server.connect() as client:
        client.send(b"".join(encode_command("ECHO", str(i)) for i in range(count)))
        replies = client.read_replies(count)
    assert replies == [b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(count)]


def test_ten_megabyte_value(server):
    value = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    with server.connect() as client:
        assert client.command("ECHO", value) == b"$%d\r\n%s\r\n" % (len(value), value)
        assert client.command("PING") == b"+PONG\r\n"


@pytest.mark.parametrize(
    "line, reply",
    [
        (b"PING\r\n", b"+PONG\r\n"),
        (b"ping\n", b"+PONG\r\n"),
        (b"  ECHO   spaced  \r\n", b"$6\r\nspaced\r\n"),
        (b'ECHO "two words"\r\n', b"$9\r\ntwo words\r\n"),
        (b"ECHO 'single quoted'\r\n", b"$13\r\nsingle quoted\r\n"),
        (b'ECHO "esc\\x41\\n\\"q\\""\r\n', b'$8\r\nescA\n"q"\r\n'),
        (b"\r\n\r\nPING\r\n", b"+PONG\r\n"),  # empty lines are ignored
    ],
)
def test_inline_commands(server, line, reply):
    with server.connect() as client:
        client.send(line)
        assert client.read_reply() == reply


def test_empty_multibulk_requests_are_ignored(server):
    with server.connect() as client:
        client.send(b"*0\r\n*-1\r\n" + encode_command("PING"))
        assert client.read_reply() == b"+PONG\r\n"


@pytest.mark.parametrize(
    "request_bytes, error",
    [
        (b"*1\r\n$3\r\nFOO\r\n", b"-ERR unknown command 'FOO', with args beginning with: \r\n"),
        (encode_command("foo", "a", "b"), b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"),
        (encode_command("PING", "a", "b"), b"-ERR wrong number of arguments for 'ping' command\r\n"),
        (encode_command("ECHO"), b"-ERR wrong number of arguments for 'echo' command\r\n"),
        (encode_command("EcHo", "a", "b"), b"-ERR wrong number of arguments for 'echo' command\r\n"),
    ],
)
def test_command_errors_keep_the_connection(server, request_bytes, error):
    with server.connect() as client:
        client.send(request_bytes)
        assert client.read_reply() == error
        assert client.command("PING") == b"+PONG\r\n"


@pytest.mark.parametrize(
    "request_bytes, error",
    [
        (b"*1\r\n+PING\r\n", b"Protocol error: expected '$', got '+'"),
        (b"*x\r\n", b"Protocol error: invalid multibulk length"),
        (b"*1\r\n$-5\r\n", b"Protocol error: invalid bulk length"),
        (b"*1\r\n$abc\r\n", b"Protocol error: invalid bulk length"),
        (b"*1\r\n$600000000\r\n", b"Protocol error: invalid bulk length"),
        (b"*99999999999\r\n", b"Protocol error: invalid multibulk length"),
        (b'ECHO "unbalanced\r\n', b"Protocol error: unbalanced quotes in request"),
        (b"ECHO 'x'y\r\n", b"Protocol error: unbalanced quotes in request"),
        (b"PING" + b"x" * 70_000, b"Protocol error: too big inline request"),
        (b"*" + b"1" * 70_000, b"Protocol error: too big mbulk count string"),
        (b"*1\r\n$" + b"1" * 70_000, b"Protocol error: too big bulk count string"),
    ],
)
def test_protocol_errors_answer_then_close(server, request_bytes, error):
    with server.connect() as client:
        client.send(encode_command("PING") + request_bytes)
        assert client.read_until_closed() == b"+PONG\r\n-ERR " + error + b"\r\n"
    with server.connect() as other:  # the server carries on
        assert other.command("PING") == b"+PONG\r\n"


def test_client_closing_mid_request_does_not_disturb_others(server):
    with server.connect() as client:
        client.send(b"*2\r\n$4\r\nECHO\r\n$100\r\nonly part of it")
    with server.connect() as other:
        assert other.command("ECHO", "fine") == b"$4\r\nfine\r\n"
