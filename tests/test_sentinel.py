"""Chapter 22 on: real Redis Sentinel fails over between our servers.

Three redis-sentinel processes watch our master and two replicas of ours;
the master is killed (kill -9) under writes made through redis-py's
Sentinel client. A replica must be promoted, the other must follow it,
the client must write on, and the old master, restarted, must come back
as a replica. With WAIT 1 before a write counts as acknowledged, no
acknowledged write may be lost. The scenario is the chapter's
failover_bench.py, which also measures real Redis in the same run.
"""

from __future__ import annotations

import pytest

from common.chapters import load_chapter_module
from tests.support import ServerProcess, real_redis_on

pytestmark = [pytest.mark.since(22), pytest.mark.readme("Failover by Redis Sentinel")]


@pytest.mark.heavy
def test_sentinel_promotes_a_replica_and_no_acknowledged_write_is_lost(server, tmp_path):
    failover = load_chapter_module(22, "failover_bench")

    def start(port: int | None, directory, *args: str) -> ServerProcess:
        return ServerProcess(server.command, ("--dir", str(directory), "--save", "", *args),
                             own_server=server.own_server, chapter=server.chapter, port=port)  # fmt: skip

    result = failover.run_failover(start, tmp_path, use_wait=True)
    assert result.lost == 0
    assert result.acknowledged >= failover.WRITES_BEFORE_KILL + failover.WRITES_AFTER_FAILOVER
    assert result.failover_seconds < failover.TIMEOUT


def test_what_sentinel_sends_is_answered_as_redis_answers(server, tmp_path):
    """The commands Sentinel sends that no earlier chapter has, in the
    state Sentinel finds: inside MULTI as its failover sends them, CONFIG
    REWRITE without a config file, SCRIPT KILL with no script running."""
    reference = real_redis_on(tmp_path)
    try:
        with server.connect() as ours, reference.connect() as theirs:
            for client in (ours, theirs):
                client.command("CLIENT", "SETNAME", "sentinel-test")
            for command in [("CONFIG", "REWRITE"), ("SCRIPT", "KILL"), ("SCRIPT", "KILL", "x"), ("SCRIPT", "NOPE"),
                            ("CLIENT", "KILL", "TYPE", "pubsub"), ("ROLE",),
                            ("MULTI",), ("SLAVEOF", "NO", "ONE"), ("CONFIG", "REWRITE"),
                            ("CLIENT", "KILL", "TYPE", "normal"), ("EXEC",)]:  # fmt: skip
                assert ours.command(*command) == theirs.command(*command), command
    finally:
        reference.stop()
