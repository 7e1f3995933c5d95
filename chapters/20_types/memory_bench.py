"""What a million elements of each new type cost, next to real Redis, in one run.

For chapter 20 and for real Redis, each on a fresh server, a million
elements are written with pipelined commands, and the resident memory
(RSS) they added is reported, per million:

- one list of 1M elements (RPUSH, 100 at a time): quicklist nodes of 8 KB;
- one hash of 1M fields, and one set of 1M members: hashtables;
- 10,000 hashes of 100 fields: each in its flat (listpack) encoding;
- 2,000 sets of 500 integers: each an intset.

Each element, field, value and member is 10 to 16 bytes of text
(element:123456), as a small application's would be.

    make demo-chapter 20            # .venv/bin/python chapters/20_types/memory_bench.py
    .venv/bin/python chapters/20_types/memory_bench.py --million 200000

Compare the rows of one run with each other, not with other runs.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rich.table import Table  # noqa: E402

from common.resp import encode_command  # noqa: E402
from tests.support import ServerProcess, server_command  # noqa: E402
from tools.bench import load_pipelined  # noqa: E402
from tools.report import wide_console  # noqa: E402

SERVER = Path(__file__).resolve().parent / "server.py"
BATCH = 100  # elements per command


def loads(elements: int) -> dict[str, tuple[int, Callable[[int], bytes], bytes]]:
    """Each load: (commands, the i-th command, the reply each gets)."""
    per_command = [b"element:%d" % i for i in range(BATCH)]

    def items(i: int) -> list[bytes]:
        return [b"%s:%d" % (item, i) for item in per_command]

    return {
        "list, 1 key (quicklist)": (elements // BATCH, lambda i: encode_command("RPUSH", "list", *items(i)), None),
        "hash, 1 key (hashtable)": (elements // BATCH,
                                    lambda i: encode_command("HSET", "hash", *[x for item in items(i) for x in (item, item)]),
                                    b":%d\r\n" % BATCH),  # fmt: skip
        "set, 1 key (hashtable)": (elements // BATCH, lambda i: encode_command("SADD", "set", *items(i)), b":%d\r\n" % BATCH),
        "hashes of 100 fields (listpack)": (elements // 100,
                                            lambda i: encode_command("HSET", b"h:%d" % i, *[x for item in per_command for x in (item, item)]),
                                            b":100\r\n"),  # fmt: skip
        "sets of 500 integers (intset)": (elements // 500,
                                          lambda i: encode_command("SADD", b"s:%d" % i, *[b"%d" % (100_000 + n) for n in range(500)]),
                                          b":500\r\n"),  # fmt: skip
    }  # fmt: skip


def measure(ours: bool, name: str, elements: int) -> float:
    """RSS per million elements that one load added to a fresh server, chapter 20's or real Redis."""
    command = server_command(SERVER) if ours else [shutil.which("redis-server") or "redis-server"]
    return measure_command(command, name, elements)


def measure_command(command: list[str], name: str, elements: int) -> float:
    """The same for any server started with `command` (make bench runs every chapter from 20)."""
    server = ServerProcess(command, ("--save", "", "--appendonly", "no"), own_server=False)
    try:
        count, request, reply = loads(elements)[name]
        before = server.memory()
        if reply is None:  # RPUSH replies the list's length, which grows
            load_integers(server.port, count, request)
        else:
            load_pipelined(server.port, count, request, reply, 1000)
        return (server.memory() - before) / elements * 1_000_000
    finally:
        server.stop()


def load_integers(port: int, count: int, request: Callable[[int], bytes], batch: int = 1000) -> None:
    """Send request(0) .. request(count - 1), `batch` at a time, each
    answered by an integer reply of its own (RPUSH's length)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            sock.sendall(b"".join(request(i) for i in range(start, stop)))
            received = bytearray()
            while received.count(b"\r\n") < stop - start:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("the server closed the connection while loading")
                received += chunk
            if not received.startswith(b":"):
                raise RuntimeError(f"unexpected replies while loading: {bytes(received[:100])!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--million", type=int, default=1_000_000, help="elements per load (default: 1,000,000)")
    options = parser.parse_args()
    console = wide_console(120)
    table = Table(title=f"RSS per million elements ({options.million:,} written), chapter 20 and real Redis")
    for column in ("load", "chapter 20", "real Redis", "ratio"):
        table.add_column(column, justify="right" if column != "load" else "left")
    for name in loads(options.million):
        console.print(f"[dim]{name} ...[/dim]")
        ours, theirs = measure(True, name, options.million), measure(False, name, options.million)
        table.add_row(name, f"{ours / 2**20:.0f} MB", f"{theirs / 2**20:.0f} MB", f"{ours / theirs:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
