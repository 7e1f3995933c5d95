"""Chapter 12 on: idle connections are closed, active ones are not, and an
idle server sleeps. The server runs with a one-second idle timeout."""

import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.since(12), pytest.mark.server_args("--idle-timeout", "1"), pytest.mark.readme("Sleeping until there is work")]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks of 1/100 s


def test_idle_connection_is_closed(server):
    with server.connect() as client:
        assert client.command("PING") == b"+PONG\r\n"
        assert client.is_closed_by_server(timeout=10)


def test_activity_restarts_the_timer(server):
    with server.connect() as busy, server.connect() as idle:
        busy.command("PING")
        idle.command("PING")
        time.sleep(0.6)
        busy.command("PING")  # busy's timer now ends 0.6 s after idle's
        assert idle.is_closed_by_server(timeout=10)
        assert busy.command("PING") == b"+PONG\r\n"


def test_a_client_that_never_sends_is_closed(server):
    with server.connect() as client:
        assert client.is_closed_by_server(timeout=10)
    with server.connect() as other:
        assert other.command("PING") == b"+PONG\r\n"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_idle_server_sleeps(server):
    """With one idle connection and none at all, the loop waits in poll()
    rather than spinning: it uses almost no CPU over a second."""
    with server.connect() as client:
        client.command("PING")
        before = cpu_seconds(server.process.pid)
        time.sleep(0.5)
        during_timer = cpu_seconds(server.process.pid) - before
    time.sleep(1.2)  # the connection is gone; no timers at all
    before = cpu_seconds(server.process.pid)
    time.sleep(0.5)
    without_timers = cpu_seconds(server.process.pid) - before
    assert during_timer < 0.2 and without_timers < 0.2


def test_a_timer_weeks_away_keeps_the_server_running(server):
    """poll() takes its timeout as a C int of milliseconds, 24.8 days at
    most: an idle timeout of 25 days must not be handed to it as it is."""
    with server.connect() as client:
        assert client.command("CONFIG", "SET", "timeout", "2200000") == b"+OK\r\n"
        assert client.command("PING") == b"+PONG\r\n"  # the loop slept once with that timer
        assert client.command("CONFIG", "SET", "timeout", "1") == b"+OK\r\n"
    server.assert_alive()
