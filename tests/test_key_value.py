"""Chapter 07 on: GET, SET, DEL, and the commands real clients send at start-up."""

import pytest

pytestmark = [pytest.mark.since(7), pytest.mark.readme("Commands")]


def test_set_get_del(server, key):
    with server.connect() as client:
        assert client.command("GET", key()) == b"$-1\r\n"
        assert client.command("SET", key(), "one") == b"+OK\r\n"
        assert client.command("GET", key()) == b"$3\r\none\r\n"
        assert client.command("SET", key(), "two") == b"+OK\r\n"
        assert client.command("GET", key()) == b"$3\r\ntwo\r\n"
        assert client.command("DEL", key(), key(), key("other")) == b":1\r\n"
        assert client.command("DEL", key()) == b":0\r\n"
        assert client.command("GET", key()) == b"$-1\r\n"


def test_keys_and_values_are_binary_safe(server, key):
    binary_key = key().encode() + b"\r\n\x00\xff"
    value = b"\x00\r\n$3\r\n\xff" * 1000
    with server.connect() as client:
        assert client.command("SET", binary_key, value) == b"+OK\r\n"
        assert client.command("GET", binary_key) == b"$%d\r\n%s\r\n" % (len(value), value)
        assert client.command("SET", binary_key, "") == b"+OK\r\n"
        assert client.command("GET", binary_key) == b"$0\r\n\r\n"


def test_keys_are_shared_between_connections(server, key):
    with server.connect() as writer, server.connect() as reader:
        writer.command("SET", key(), "shared")
        assert reader.command("GET", key()) == b"$6\r\nshared\r\n"


@pytest.mark.readme("What real clients send first")
def test_command_describes_the_commands(server):
    with server.redis(protocol=2) as client:
        table = client.command()
        assert client.command_count() == len(table)
        assert {"get", "set", "del", "ping", "echo", "command", "client"} <= set(table)
        assert table["get"]["arity"] == 2
        assert table["del"]["arity"] == -2
    with server.connect() as raw:
        assert raw.command("COMMAND", "INFO", "get", "nosuch") == (
            b"*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
            b"*0\r\n*0\r\n*0\r\n*0\r\n$-1\r\n"
        )


@pytest.mark.until(20)  # chapter 21 documents its commands
@pytest.mark.readme("What real clients send first")
def test_command_docs_is_not_there_yet(server):
    with server.connect() as raw:
        assert raw.command("COMMAND", "DOCS") == b"-ERR unknown subcommand 'DOCS'. Try COMMAND HELP.\r\n"


@pytest.mark.readme("What real clients send first")
def test_client_setinfo(server):
    with server.connect() as client:
        assert client.command("CLIENT", "SETINFO", "LIB-NAME", "mylib") == b"+OK\r\n"
        assert client.command("CLIENT", "SETINFO", "lib-ver", "1.0") == b"+OK\r\n"
        assert client.command("CLIENT", "SETINFO", "lib-name", "has space") == (
            b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
        )
        assert client.command("CLIENT", "SETINFO", "color", "x") == b"-ERR Unrecognized option 'color'\r\n"
        assert client.command("CLIENT", "NOSUCH") == b"-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n"


def test_a_big_value_is_read_into_place(server, key):
    """A 64 MB SET costs about 64 MB at its peak, as in Redis: the value is
    read into a buffer of its final size, not into the input buffer and then
    copied out of it (which peaked at twice the value)."""
    size = 64 * 1024 * 1024
    resident_before = server.memory("VmRSS")
    with server.connect() as client:
        assert client.command("SET", key(), b"v" * size) == b"+OK\r\n"
        peak = server.memory("VmHWM")
        assert client.command("DEL", key()) == b":1\r\n"
    grown = peak - resident_before
    assert grown < 1.4 * size, f"peak RSS grew by {grown / size:.2f}x the value"


def test_info_section_titles_are_redis_own(pair):
    """Tools split INFO by its "# Section" lines: each we print is spelled as Redis spells it."""
    ours, theirs = pair
    titles = [[line for line in client.command("INFO", "all").split(b"\r\n") if line.startswith(b"# ")]
              for client in (ours, theirs)]  # fmt: skip
    assert b"# CPU" in titles[0]
    assert b"# Cluster" in titles[0]  # cluster_enabled:0: clients (redis-py's tests) read it at start-up
    assert set(titles[0]) <= set(titles[1]), titles
