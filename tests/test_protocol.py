"""Chapter 04 on: RESP framing, PING and ECHO, pipelining, inline commands
and protocol errors, over raw sockets."""

import socket
import time

import pytest

from common.resp import encode_command
from tests.support import ServerProcess

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


# Framing at its edges: each request malformed or one off somewhere, in
# requests only chapter 04's PING and ECHO need. The parser has a fast path
# for a request that arrived whole and an incremental one for a request
# that arrives in pieces; both must answer as Redis does.
FRAMING_EDGES = [
    b"*1\r\n$4\r\nPING\r\n",
    b"*1\r\n$5\r\nPING\r\n",  # a length one too long: Redis waits for the missing byte
    b"*1\r\n$3\r\nPING\r\n",  # one too short: 'PIN', then "G\r" skipped, then "\n"
    b"*1\r\n$4\r\nPING\r",
    b"*1\r\n$4\r\nPING",
    b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",  # the two bytes after a payload are skipped unchecked
    b"*1\r\n$4\r\nPI\r\n\r\n*1\r\n$4\r\nPING\r\n",  # a CRLF inside an argument
    b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
    b"*2\r\n$4\r\nECHO\r\n$1\r\nhi\r\n",
    b"*2\r\n$4\r\nECHO\r\n$3\r\nhi\r\n",
    b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    b"*2\r\n$4\r\nPING\r\n",  # one argument fewer than counted
    b"*3\r\n$4\r\nECHO\r\n$1\r\na\r\n",
    b"*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nPING\r\n",
    b"*1\r\n$0\r\n\r\n",
    b"*0\r\n*1\r\n$4\r\nPING\r\n",
    b"*-1\r\n*-2\r\n*1\r\n$4\r\nPING\r\n",
    b"*\r\n",
    b"*01\r\n$4\r\nPING\r\n",  # leading zeros: not a number to Redis
    b"*+1\r\n$4\r\nPING\r\n",
    b"*1\r\n$04\r\nPING\r\n",
    b"*1\r\n$+4\r\nPING\r\n",
    b"*1\r\n$\r\nPING\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$-0\r\n\r\n",
    b"*1\r\n$4 \r\nPING\r\n",
    b"*1 \r\n$4\r\nPING\r\n",
    b"*1\n$4\nPING\n",  # LF alone does not end a length line
    b"*2\r\n$4\r\nECHO\r\n:5\r\n",
    b"*1\r\n$536870912\r\n",  # proto-max-bulk-len itself: allowed, waited for
    b"*1\r\n$536870913\r\n",
    b"*2147483648\r\n",
    b"*1\r\n$4\r\nPING\r\nPING\r\n",  # multibulk, then inline
    b"PING\r\n*1\r\n$4\r\nPING\r\n",
    b"PING",
    b"\r\n\n \r\nPING\n",
    b"ECHO a b\r\n",
    b'ECHO "a"b\r\n',
    b'ECHO "\\x4"\r\n',
    b"$4\r\nPING\r\n",
]


def outcome(server: ServerProcess, data: bytes, split: bool) -> bytes:
    """What comes back for `data`, sent in one write or a byte at a time,
    then the write side closed: the replies, until the server hangs up.
    Split, what has come back is read after every byte, and sending stops
    once the server has hung up (a protocol error closes the connection)."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if split:
                for i in range(len(data)):
                    sock.sendall(data[i : i + 1])
                    time.sleep(0.001)  # its own segment, and so (mostly) its own read
                    if not drain(sock, received):
                        return bytes(received)
            else:
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            while chunk := sock.recv(65536):
                received += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server: what it said is in `received`
    return bytes(received)


def drain(sock: socket.socket, received: bytearray) -> bool:
    """Read what has arrived without waiting; False once the server has closed."""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(65536):
            received += chunk
        return False
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


REDIS_OUTCOMES: dict[bytes, bytes] = {}


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_framing_edges_match_redis_whole_and_split(server, real_redis, split):
    differences = []
    for data in FRAMING_EDGES:
        if data not in REDIS_OUTCOMES:
            REDIS_OUTCOMES[data] = outcome(real_redis, data, split=False)
        ours = outcome(server, data, split)
        if ours != REDIS_OUTCOMES[data]:
            how = "a byte at a time" if split else "in one write"
            differences.append(f"{data!r} ({how}): Redis answered {REDIS_OUTCOMES[data]!r}, the server {ours!r}")
    assert not differences, "\n".join(differences)
