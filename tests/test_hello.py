"""Chapter 03: the hello/world server and its client."""

import subprocess
import sys

import pytest

from tests.support import CHAPTERS_DIR

pytestmark = [pytest.mark.since(3), pytest.mark.until(3), pytest.mark.readme("What it teaches")]


def test_server_answers_world(server):
    with server.connect() as client:
        client.send(b"hello")
        assert client.read_until_closed() == b"world"


def test_serves_clients_one_after_another(server):
    for _ in range(3):
        test_server_answers_world(server)


def test_silent_client_does_not_stop_the_server(server):
    server.connect().close()
    test_server_answers_world(server)


def test_client_script(server):
    client = CHAPTERS_DIR / "03_hello" / "client.py"
    result = subprocess.run(
        [sys.executable, str(client), "--port", str(server.port)], capture_output=True, text=True, timeout=10
    )
    assert result.stdout.strip() == "server says: world"
