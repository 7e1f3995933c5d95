"""Chapter 03's client: connect, say hello, print what the server says."""

from __future__ import annotations

import argparse
import socket

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=6379)
parser.add_argument("message", nargs="?", default="hello")
options = parser.parse_args()

try:
    conn = socket.create_connection((options.host, options.port))
except ConnectionRefusedError:
    raise SystemExit(f"no server on {options.host}:{options.port} (start one: make run-chapter 3)") from None
with conn:
    conn.sendall(options.message.encode())
    print("server says:", conn.recv(64 * 1024).decode(errors="replace"))
