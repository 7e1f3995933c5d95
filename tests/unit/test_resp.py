"""common/resp.py: the request parser, fed bytes split anywhere."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.resp import (
    BIG_ARGUMENT,
    ProtocolError,
    RequestParser,
    encode_command,
    parse_integer,
    split_inline_arguments,
)

pytestmark = pytest.mark.since(4)

arguments = st.lists(st.binary(max_size=40), min_size=1, max_size=6)


def parse_all(chunks: list[bytes]) -> list[list[bytes]]:
    parser = RequestParser()
    requests = []
    for chunk in chunks:
        parser.feed(chunk)
        while (request := parser.next_request()) is not None:
            requests.append(request)
    return requests


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)])]


@settings(max_examples=200, deadline=None)
@given(requests=st.lists(arguments, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_multibulk_requests_survive_any_split(requests, cuts):
    stream = b"".join(encode_command(*request) for request in requests)
    assert parse_all(split_at(stream, cuts)) == requests


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.text("abcXYZ09:-_", min_size=1, max_size=8), min_size=1, max_size=5))
def test_inline_requests(words):
    line = " ".join(words).encode()
    assert parse_all([line + b"\r\n", line + b"\n"]) == [[w.encode() for w in words]] * 2


def test_byte_by_byte_keeps_state_and_consumes_everything():
    stream = encode_command("SET", "k", b"v" * 1000) + b"PING\r\n"
    parser = RequestParser()
    requests = []
    for byte in stream:
        parser.feed(bytes([byte]))
        while (request := parser.next_request()) is not None:
            requests.append(request)
    assert requests == [[b"SET", b"k", b"v" * 1000], [b"PING"]]
    assert parser.buffered() == 0


@pytest.mark.parametrize(
    "line, expected",
    [
        (b'a "b c" d', [b"a", b"b c", b"d"]),
        (b"'it''s'", None),
        (b"'it\\'s'", [b"it's"]),
        (b'"\\x41\\x4a\\n\\t\\\\"', [b"AJ\n\t\\"]),
        (b'"\\xZZ"', [b"xZZ"]),
        (b'""', [b""]),
        (b'"unterminated', None),
        (b'"closed"x', None),
        (b"   ", []),
    ],
)
def test_split_inline_arguments(line, expected):
    if expected is None:
        with pytest.raises(ProtocolError, match="unbalanced quotes"):
            split_inline_arguments(line)
    else:
        assert split_inline_arguments(line) == expected


@pytest.mark.parametrize(
    "limits, data, message",
    [
        ({"max_bulk_length": 10}, b"*1\r\n$11\r\n", "invalid bulk length"),
        ({"max_arguments": 3}, b"*4\r\n", "invalid multibulk length"),
        ({"max_inline_length": 10}, b"PING 123456789", "too big inline request"),
        ({"max_inline_length": 10}, b"PING 123456789\r\n", "too big inline request"),
        ({"max_inline_length": 10}, b"*12345678901", "too big mbulk count string"),
        ({}, b"*1\r\n$3\r\nabc\r\n*1\r\n:1\r\n", "expected '\\$', got ':'"),
    ],
)
def test_limits(limits, data, message):
    parser = RequestParser(**limits)
    parser.feed(data)
    with pytest.raises(ProtocolError, match=message):
        while parser.next_request() is not None:
            pass


@pytest.mark.parametrize(
    "text, value",
    [(b"0", 0), (b"-12", -12), (b"9223372036854775807", 2**63 - 1), (b"-9223372036854775808", -(2**63))],
)
def test_parse_integer_accepts(text, value):
    assert parse_integer(text) == value


@pytest.mark.parametrize("text", [b"", b"+1", b" 1", b"1 ", b"01", b"-0", b"1_0", b"9223372036854775808", b"0x10"])
def test_parse_integer_rejects(text):
    assert parse_integer(text) is None


class IncrementalOnly(RequestParser):
    """The parser without its fast path for requests that arrive whole."""

    def _parse_whole_request(self) -> None:
        return None


def outcome(parser: RequestParser, chunks: list[bytes]) -> tuple[list[list[bytes]], str | None]:
    """The requests parsed, and the protocol error that stopped the parser, if any."""
    requests = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (request := parser.next_request()) is not None:
                requests.append(request)
    except ProtocolError as error:
        return requests, str(error)
    return requests, None


# Headers as a client (or an attacker) may write them: canonical, with a sign,
# leading zeros, spaces, too long, or not numbers at all.
odd_numbers = st.sampled_from([b"0", b"1", b"2", b"01", b"+1", b"-1", b" 1", b"1 ", b"", b"x", b"99999999999", b"3"])


def spelled(number: int, how: str) -> bytes:
    """`number` written canonically, or as a lenient parser would also accept it."""
    return {"canonical": b"%d", "zero": b"0%d", "plus": b"+%d", "space": b" %d", "after": b"%d ", "big": b"%d0"}[
        how
    ] % number


@st.composite
def odd_requests(draw) -> bytes:
    """A multibulk request with some of its length lines spelled oddly."""
    args = draw(arguments)
    ways = st.sampled_from(["canonical", "canonical", "zero", "plus", "space", "after", "big"])
    request = b"*" + spelled(len(args), draw(ways)) + b"\r\n"
    for arg in args:
        request += b"$" + spelled(len(arg), draw(ways)) + b"\r\n" + arg + b"\r\n"
    return request


@st.composite
def one_off_requests(draw) -> bytes:
    """A request canonical but for one length line, one more or one less
    than its payload: the fast path must not take it (Redis reads that many bytes)."""
    args = draw(arguments)
    wrong = draw(st.integers(0, len(args) - 1))
    delta = draw(st.sampled_from([1, -1])) if args[wrong] else 1
    request = b"*%d\r\n" % len(args)
    for index, arg in enumerate(args):
        request += b"$%d\r\n%s\r\n" % (len(arg) + (delta if index == wrong else 0), arg)
    return request


pieces = st.one_of(
    arguments.map(lambda args: encode_command(*args)),
    odd_requests(),
    one_off_requests(),
    st.tuples(st.sampled_from([b"*", b"$"]), odd_numbers).map(lambda parts: parts[0] + parts[1] + b"\r\n"),
    st.binary(max_size=12),
    # Arguments holding CRLF, or looking like headers: they defeat a parser
    # that splits the buffer into lines.
    st.lists(st.sampled_from([b"\r\n", b"a\r\nb", b"", b"\r", b"\n", b"$3", b"*1\r\n"]), min_size=1, max_size=4).map(
        lambda args: encode_command(*args)
    ),
    st.sampled_from([b"PING\r\n", b"ECHO a\n", b"\r\n"]),  # inline, between multibulk requests
)


@settings(max_examples=400, deadline=None)
@given(stream=st.lists(pieces, min_size=1, max_size=10).map(b"".join), cuts=st.lists(st.integers(0, 400), max_size=8))
@example(stream=b"*1\r\n$5\r\nPING\r\n", cuts=[])  # one byte missing: wait for it, as Redis
@example(stream=b"*1\r\n$3\r\nPING\r\n", cuts=[])
def test_the_fast_path_parses_exactly_as_the_incremental_one(stream, cuts):
    expected = outcome(IncrementalOnly(), [stream])
    assert outcome(RequestParser(), [stream]) == expected
    assert outcome(RequestParser(), split_at(stream, cuts)) == expected
    assert batch_outcome(split_at(stream, cuts), take=len(cuts) % 3) == expected


# The same request many times over, as a pipeline sends it: the batch path
# checks a run of requests with one header at once (up to RUN at a time).
runs = st.lists(st.tuples(pieces, st.integers(1, 40)), min_size=1, max_size=4).map(
    lambda repeated: b"".join(piece * times for piece, times in repeated)
)


@settings(max_examples=300, deadline=None)
@given(stream=runs, cuts=st.lists(st.integers(0, 3000), max_size=4))
@example(stream=encode_command("GET", "k") * 3 + encode_command("SET", "k", "v"), cuts=[])  # the run ends at a new header
@example(stream=encode_command("SET", "k", "v") * 40 + encode_command("SET", "k", b"v" * 2000) * 3, cuts=[])
@example(stream=(encode_command("SET", "k", "v") * 31 + encode_command("SET", "k", b"v" * 2000)) * 3, cuts=[])
def test_runs_of_like_requests_parse_as_one_at_a_time(stream, cuts):
    expected = outcome(IncrementalOnly(), [stream])
    assert batch_outcome(split_at(stream, cuts), take=0) == expected
    assert batch_outcome(split_at(stream, cuts), take=len(cuts) + 1) == expected


def batch_outcome(chunks: list[bytes], take: int) -> tuple[list[list[bytes]], str | None]:
    """outcome() through next_requests, as chapter 23 reads a batch: after
    each feed, batches until none; of each batch run only `take` requests
    (0: all) and hand the rest back, as a server that stops midway does."""
    parser, requests = RequestParser(), []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while batch := parser.next_requests():
                run = batch[:take] if take else batch
                requests.extend(run)
                if len(run) < len(batch):
                    parser.put_back(batch[len(run) :])
                    assert parser.buffered() > 0
    except ProtocolError as error:
        return requests, str(error)
    return requests, None


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(BIG_ARGUMENT - 2, BIG_ARGUMENT + 70_000), min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 3 * BIG_ARGUMENT), max_size=12),
)
def test_big_arguments_are_read_into_place_whatever_the_split(sizes, cuts):
    requests = [[b"SET", b"k%d" % i, bytes([i % 256]) * size + b"\r\nend"] for i, size in enumerate(sizes)]
    stream = b"".join(encode_command(*request) for request in requests) + encode_command("PING")
    assert parse_all(split_at(stream, cuts)) == [*requests, [b"PING"]]
    assert outcome(RequestParser(), split_at(stream, cuts)) == outcome(IncrementalOnly(), [stream])


def test_a_big_argument_counts_toward_the_query_buffer_as_it_arrives():
    parser = RequestParser()
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$100000\r\n" + b"x" * 40_000)
    assert parser.next_request() is None
    assert parser.pending_bytes() == 4 + 40_000
    parser.feed(b"x" * 60_000 + b"\r\n*1\r\n$4\r\nPING\r\n")
    assert parser.next_request() == [b"ECHO", b"x" * 100_000]
    assert parser.next_request() == [b"PING"]
    assert parser.pending_bytes() == 0
