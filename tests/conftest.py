"""Test configuration: which chapters a test runs on, and the servers it runs against.

A test (or a whole module, through ``pytestmark``) is marked with the first
chapter it applies to, ``@pytest.mark.since(7)``, and optionally the last,
``@pytest.mark.until(3)``. A test that takes the ``server`` fixture runs once
per chapter in that range, each against that chapter's server; other tests
(the unit tests of common/) run once if their range is selected. A test
marked ``heavy`` (kill -9 and restarts, 200,000 keys, ten thousand
connections) runs, in the whole run, on the chapter that introduces it and
the newest chapter only; so does any test on the chapters past the book
(15 on), which import each other; ``--chapter N`` runs every test that
applies to N all the same.

    pytest                      every test on every chapter
    pytest --chapter 7          what applies to chapter 07
    pytest --chapter 7 --server 'python my_server.py --port {port}'
                                chapter 07's tests against your own server

A server is started once per test module and chapter (tests use distinct
keys), and at the end must still be running and stop cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import STARTED, RawClient, ServerProcess, discover_chapters, require_tool, server_command

pytest_plugins = ["tests.grader"]  # grader mode's report
CHAPTERS = discover_chapters()
LAST_BOOK_CHAPTER = 14


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chapter", type=int, help="run only the tests that apply to this chapter")
    parser.addoption(
        "--server",
        help="grader mode: test this server command instead of the chapter's own; "
        "{port} is replaced by the port to listen on (needs --chapter)",
    )


def pytest_configure(config: pytest.Config) -> None:
    chapter = config.getoption("--chapter")
    if config.getoption("--server") and chapter is None:
        raise pytest.UsageError("--server needs --chapter: which chapter's tests should it pass?")
    if chapter is not None and chapter not in CHAPTERS:
        raise pytest.UsageError(f"no chapter {chapter}; chapters are {sorted(CHAPTERS)}")


def chapter_range(node: pytest.Item | pytest.Function) -> tuple[int, int]:
    since = node.get_closest_marker("since")
    until = node.get_closest_marker("until")
    return (since.args[0] if since else min(CHAPTERS), until.args[0] if until else max(CHAPTERS))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" not in metafunc.fixturenames:
        return
    first, last = chapter_range(metafunc.definition)
    chosen = metafunc.config.getoption("--chapter")
    chapters = [n for n in CHAPTERS if first <= n <= last and (chosen is None or n == chosen)]
    if chosen is None and chapters:
        # The whole run grows with the chapters, not their square: a costly
        # test runs on the chapter that introduces it and the newest only;
        # any other, on every book chapter from its own (each a whole copy
        # of the server), and past the book, where each chapter imports the
        # one before, on the chapter that introduces it and the newest.
        if metafunc.definition.get_closest_marker("heavy"):
            chapters = sorted({chapters[0], chapters[-1]})
        else:
            chapters = [n for n in chapters if n <= LAST_BOOK_CHAPTER or n in (chapters[0], chapters[-1])]
    metafunc.parametrize("server", chapters, indirect=True, scope="module", ids=lambda n: f"ch{n:02d}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --chapter, leave out the tests whose range does not include it;
    in grader mode also the unit tests of common/, which test this project's
    code rather than the server under test."""
    chosen = config.getoption("--chapter")
    if chosen is None:
        return
    graded = config.getoption("--server") is not None
    selected, deselected = [], []
    for item in items:
        first, last = chapter_range(item)
        wanted = first <= chosen <= last and (not graded or "server" in getattr(item, "fixturenames", ()))
        (selected if wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """The server of the chapter this test is parametrized with, running."""
    chapter: int = request.param
    marker = request.node.get_closest_marker("server_args")
    extra_args = tuple(marker.args) if marker else ()
    graded = request.config.getoption("--server")
    if graded:
        try:
            process = ServerProcess(graded, extra_args, own_server=False, chapter=chapter)
        except RuntimeError as error:
            if extra_args:  # these tests need an option the learner's server may not have yet
                pytest.fail(f"your server did not start with {' '.join(extra_args)}, which these tests need:\n{error}")
            # One report, with the server's own output, and the run stops.
            from tests.grader import stop_run  # imported by pytest as a plugin first, so assertions are rewritten

            stop_run(request.config, f"your server did not start, so no test can run:\n{error}")
    else:
        process = ServerProcess(server_command(CHAPTERS[chapter]), extra_args, chapter=chapter)
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def no_server_left_behind() -> Iterator[None]:
    """The servers a test started itself are killed after it if it failed
    before stopping them: they would hold their ports, files and memory
    for the rest of the run. (The module's `server` is started before.)"""
    before = len(STARTED)
    yield
    for started in STARTED[before:]:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait()
    del STARTED[before:]


@pytest.fixture
def key(request: pytest.FixtureRequest):
    """Key names unique to this test, so tests can share a server: key("a")."""
    prefix = request.node.name

    def make(name: str = "k") -> str:
        return f"{prefix}:{name}"

    return make


@pytest.fixture
def pair(server, real_redis) -> Iterator[tuple[RawClient, RawClient]]:
    """A connection to the chapter's server and one to real Redis, for
    differential tests (tests.support.assert_same_replies)."""
    with server.connect() as ours, real_redis.connect() as theirs:
        yield ours, theirs


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def empty_pair(request: pytest.FixtureRequest, pair) -> tuple[RawClient, RawClient]:
    """`pair` with both keyspaces emptied (FLUSHALL: chapter 09 on), speaking
    RESP2, then, in a second run of the test, RESP3. The HELLO replies
    differ (server version, client id), so only their shape is compared."""
    protocol = request.param
    for client in pair:
        assert client.command("FLUSHALL") == b"+OK\r\n"
    replies = [client.command("HELLO", protocol) for client in pair]
    assert [reply[:4] for reply in replies] == [b"%7\r\n" if protocol == 3 else b"*14\r"] * 2
    return pair


@pytest.fixture(scope="session")
def real_redis() -> Iterator[ServerProcess]:
    """A real redis-server, for differential tests, with persistence off."""
    binary = require_tool("redis-server")
    process = ServerProcess([binary, "--save", "", "--appendonly", "no"], own_server=False)
    yield process
    process.stop()
