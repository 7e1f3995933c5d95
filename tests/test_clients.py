"""Real clients: redis-py and redis-cli, from the chapter each first works in.

Before chapter 09 there is no HELLO, so redis-py speaks RESP2 (protocol=2);
from chapter 09 on its defaults (RESP3, HELLO 3 on connect) must work.
"""

import subprocess

import pytest

from tests.support import require_tool



def redis_py_protocols(server) -> list[int | None]:
    """protocol=2 always; redis-py's default too once the server has HELLO."""
    return [2] if server.chapter < 9 else [2, None]


@pytest.mark.since(4)
@pytest.mark.readme("Run and try")
def test_redis_py_ping_echo(server):
    for protocol in redis_py_protocols(server):
        with server.redis(protocol=protocol) as client:
            assert client.ping() is True
            assert client.echo("hi") == b"hi"


@pytest.mark.since(7)
@pytest.mark.readme("Commands")
def test_redis_py_get_set_del(server, key):
    for protocol in redis_py_protocols(server):
        with server.redis(protocol=protocol) as client:
            assert client.set(key(), "value") is True
            assert client.get(key()) == b"value"
            assert client.delete(key(), key("missing")) == 1
            assert client.get(key()) is None


@pytest.mark.since(7)
@pytest.mark.readme("Commands")
def test_redis_py_pipeline(server, key):
    with server.redis(protocol=2) as client:
        pipe = client.pipeline(transaction=False)
        for i in range(100):
            pipe.set(key(str(i)), i)
            pipe.get(key(str(i)))
        results = pipe.execute()
    assert results == [item for i in range(100) for item in (True, str(i).encode())]


def redis_cli(server, *args: str, stdin: str | None = None) -> str:
    binary = require_tool("redis-cli")
    result = subprocess.run(
        [binary, "-p", str(server.port), *args], input=stdin, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.since(4)
@pytest.mark.readme("Run and try")
def test_redis_cli_ping_echo(server):
    assert redis_cli(server, "PING") == "PONG\n"
    assert redis_cli(server, "ECHO", "hello world") == "hello world\n"
    assert redis_cli(server, "NOSUCH").startswith("ERR unknown command 'NOSUCH', with args beginning with:")


@pytest.mark.since(7)
@pytest.mark.readme("What real clients send first")
def test_redis_cli_get_set(server, key):
    assert redis_cli(server, "SET", key(), "from redis-cli") == "OK\n"
    assert redis_cli(server, "GET", key()) == "from redis-cli\n"
    assert redis_cli(server, "GET", key("missing")) == "\n"


@pytest.mark.since(7)
@pytest.mark.readme("What real clients send first")
def test_redis_cli_reads_commands_from_stdin(server, key):
    # Without a command, redis-cli starts as it does interactively, asking
    # the server for its commands first.
    script = f"SET {key()} piped\nGET {key()}\nDEL {key()}\n"
    assert redis_cli(server, stdin=script) == "OK\npiped\n1\n"
