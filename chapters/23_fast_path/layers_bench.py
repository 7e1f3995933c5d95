"""What each layer of a fast request costs: the parser, the reply, the keyspace, the gate.

make bench's pipelines (16 SETs per write, then 16 GETs, random keys of
100,000) are fed to one connection's parser inside this process, with no
sockets and no event loop, and run through five ways of answering them,
each adding one layer to the one before:

* parse: the parser alone (common/resp.py's next_requests);
* reply: and "+OK" or a fixed bulk reply per request;
* dict: and a Python dict as the keyspace: what tools/ceiling_server.py
  does per request;
* compact: chapter 23's compact keyspace instead of the dict (the SET
  phase grows it from empty, as make bench's does);
* chapter 23: the whole of process_input: the gate, statistics, keyspace
  hits and misses, the save rules' count, the batch's bookkeeping.

Each way runs --rounds times, alternating, each in a process of its
own that loads chapter 23 afresh; the median of its rounds is printed, in microseconds of CPU per request, for
the SET and the GET phase. The differences between rows are what a layer
costs (the sockets and the loop come on top, in cost_per_request.py).

    .venv/bin/python chapters/23_fast_path/layers_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.resp import encode_command  # noqa: E402

PIPELINE, BATCHES, KEYS = 16, 6_250, 100_000


def pipelines(name: bytes, rng: random.Random) -> list[bytes]:
    """BATCHES writes of PIPELINE requests of `name`, as redis-benchmark -P 16 -r 100000 sends them."""
    writes = []
    for _ in range(BATCHES):
        keys = [b"key:%012d" % rng.randrange(KEYS) for _ in range(PIPELINE)]
        arguments = [(b"SET", key, b"xxx") if name == b"SET" else (b"GET", key) for key in keys]
        writes.append(b"".join(encode_command(*request) for request in arguments))
    return writes


def answer_with(keyspace: Any, layer: str) -> Callable[[Any], None]:
    """A process_input for one of the layers below chapter 23's own."""
    get = keyspace.get if layer == "dict" else keyspace.value_of if layer == "compact" else None
    store = keyspace.__setitem__ if layer == "dict" else keyspace.store if layer == "compact" else None

    def process(conn: Any) -> None:
        parser, out = conn.parser, conn.outgoing
        while batch := parser.next_requests():
            if layer == "parse":
                continue
            for request in batch:
                if request[0] == b"GET":
                    value = get(request[1]) if get is not None else b"xxx"
                    out += b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
                else:
                    if store is not None:
                        store(request[1], request[2])
                    out += b"+OK\r\n"

    return process


def measure(layer: str) -> list[float]:
    """CPU microseconds per request of the SET and the GET phase, answered by `layer` (in this process)."""
    rng = random.Random(1)
    phases = [pipelines(b"SET", rng), pipelines(b"GET", rng)]
    chapter = load_chapter(23)
    chapter.add_commands()
    chapter14 = chapter.chapter14
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as client:
        sock, _ = listener.accept()
        conn = chapter14.add_client(sock, select.poll(), {})
        keyspace = {} if layer == "dict" else chapter14.keyspace
        process = chapter14.input_processors[-1] if layer == "chapter 23" else answer_with(keyspace, layer)
        costs = []
        for writes in phases:
            started = time.process_time()
            for data in writes:
                conn.parser.feed(data)
                process(conn)
                del conn.outgoing[:]
            costs.append((time.process_time() - started) / (PIPELINE * len(writes)) * 1e6)
        sock.close()
    del client
    return costs


LAYERS = ["parse", "reply", "dict", "compact", "chapter 23"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layer", choices=LAYERS, help=argparse.SUPPRESS)  # one measurement, in this process
    options = parser.parse_args()
    if options.layer:
        print(*measure(options.layer))
        return
    costs: dict[str, list[list[float]]] = {layer: [] for layer in LAYERS}
    for _ in range(options.rounds):
        for layer in LAYERS:
            output = subprocess.run([sys.executable, __file__, "--layer", layer], capture_output=True, text=True, check=True)
            costs[layer].append([float(figure) for figure in output.stdout.split()])
    print(f"CPU us per request, median of {options.rounds} rounds (SET phase, GET phase):")
    for layer in LAYERS:
        set_us, get_us = (statistics.median(round_[phase] for round_ in costs[layer]) for phase in (0, 1))
        print(f"  {layer:<12} {set_us:5.2f}  {get_us:5.2f}")


if __name__ == "__main__":
    main()
