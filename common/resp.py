"""RESP, the Redis serialization protocol: an incremental request parser and
RESP2 reply encoders.

Introduced in chapter 04 (Request-Response Protocol). The book frames each
message with a 4-byte length prefix; we speak RESP instead so that real
clients (redis-cli, redis-py, redis-benchmark) can talk to every chapter's
server. The lesson is the same: TCP is a byte stream with no message
boundaries, so the protocol must say where each request ends, and the server
must cope with a request arriving in pieces or many requests in one read.

Requests come in two forms, both handled by `RequestParser`:

* multibulk, what client libraries send: ``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``
* inline, what a human types into nc or telnet: ``GET k\\r\\n``

Replies are written by the ``write_*`` functions, which append to the
connection's output buffer (like Redis's own addReply* family) so that a
batch of pipelined replies leaves in one send without intermediate objects.

Limits and error texts are Redis's own, so a misbehaving client sees exactly
what real Redis would tell it.
"""

from __future__ import annotations

import io
import re

# Redis's defaults (proto-max-bulk-len, PROTO_INLINE_MAX_SIZE). Redis allows
# up to INT_MAX arguments; a million is far beyond any real command and keeps
# a hostile header from making us allocate a huge list.
MAX_BULK_LENGTH = 512 * 1024 * 1024
MAX_ARGUMENTS = 1024 * 1024
MAX_INLINE_LENGTH = 64 * 1024
# Redis's client-query-buffer-limit: a client whose unexecuted input
# (including the arguments of a request still arriving) passes this is
# disconnected. Without it, a client could declare a million 512 MB
# arguments and keep sending.
MAX_QUERY_BUFFER = 1024 * 1024 * 1024
# Arguments at least this long are read into a buffer of their own as they
# arrive (RequestParser._start_big_argument), or, if one arrived whole in a
# single read, copied out through a memoryview: slicing a bytearray and then
# calling bytes() would copy it twice (Redis's PROTO_MBULK_BIG_ARG).
BIG_ARGUMENT = 32 * 1024

CRLF = b"\r\n"
ASTERISK = ord("*")

# Redis parses lengths with string2ll: optional minus, no plus sign, no
# spaces, no leading zeros. Python's int() is laxer ("+1", " 1", "1_0").
_STRICT_INTEGER = re.compile(rb"0|-?[1-9][0-9]{0,18}")


def parse_integer(data: bytes) -> int | None:
    """The value of `data` as Redis parses a 64-bit integer, or None if invalid.

    Stricter than int(): no sign "+", no spaces, no leading zeros, no "_".
    Commands use it too (e.g. EXPIRE's seconds), so they reject what Redis rejects.
    """
    if not _STRICT_INTEGER.fullmatch(data):
        return None
    value = int(data)
    return value if -(2**63) <= value < 2**63 else None


class ProtocolError(Exception):
    """The client broke the protocol. The message is Redis's error text
    (without the ``ERR`` prefix); the server replies with it and then closes
    the connection, as Redis does, since the stream can no longer be framed."""


class RequestParser:
    """Turns a stream of bytes, fed in chunks split anywhere, into requests.

    Usage::

        parser.feed(data)                        # whatever recv() returned
        while (request := parser.next_request()) is not None:
            handle(request)                      # a list of bytes arguments

    ``next_request`` returns ``None`` when the buffer holds no complete
    request yet, and raises `ProtocolError` on malformed input (after which
    the parser must not be used again).

    The parser keeps its place between calls: a 10 MB value arriving in a
    thousand reads is scanned once, not once per read. Consumed bytes are
    dropped from the front of the buffer once per ``feed``, not once per
    request, so a batch of pipelined requests costs no copying of the rest
    of the buffer per request.

    The limits are class attributes, so that a server's CONFIG SET changes
    them for every connection at once, as in Redis; a parser given its own
    limits keeps them. The parser enforces all but `max_query_buffer`,
    which the server compares with `pending_bytes()` after each feed.
    """

    max_bulk_length = MAX_BULK_LENGTH  # proto-max-bulk-len
    max_arguments = MAX_ARGUMENTS
    max_inline_length = MAX_INLINE_LENGTH
    max_query_buffer = MAX_QUERY_BUFFER  # client-query-buffer-limit

    def __init__(
        self,
        max_bulk_length: int | None = None,
        max_arguments: int | None = None,
        max_inline_length: int | None = None,
    ) -> None:
        if max_bulk_length is not None:
            self.max_bulk_length = max_bulk_length
        if max_arguments is not None:
            self.max_arguments = max_arguments
        if max_inline_length is not None:
            self.max_inline_length = max_inline_length
        self._buffer = bytearray()
        self._pos = 0  # start of the unparsed bytes in _buffer
        # A multibulk request in progress: the arguments read so far, how
        # many are still to come, and the length of the bulk string being
        # awaited (-1 while waiting for its "$<length>" header).
        self._args: list[bytes] | None = None
        self._args_missing = 0
        self._args_bytes = 0  # the length of the arguments in _args
        self._bulk_length = -1
        # A big argument arriving: read into place (see _start_big_argument)
        # rather than into _buffer, and how many of its bytes (CRLF included)
        # are still to come.
        self._big: io.BytesIO | None = None
        self._big_missing = 0
        # The fast path's lines: the buffer from _pos, split at CRLF once per
        # feed, and the index of the next request's first line in it.
        self._lines: list[bytes] | None = None
        self._line = 0
        # Requests a server took with next_requests and handed back unrun
        # (put_back), returned first; and their arguments' bytes.
        self._ready: list[list[bytes]] = []
        self._ready_bytes = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._big is not None and self._big_missing:
            taken = min(len(data), self._big_missing)
            with memoryview(data) as view:
                self._big.write(view[:taken])
            self._big_missing -= taken
            data = data[taken:]
            if not data:
                return
        self._lines = None  # split again, with what arrived
        if self._pos:
            # Drop what was consumed. CPython shrinks a bytearray from the
            # front by moving its start pointer, so this does not copy the
            # unparsed remainder.
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def buffered(self) -> int:
        """How many received bytes are not yet consumed (requests handed
        back with put_back count by their arguments' length)."""
        return len(self._buffer) - self._pos + self._ready_bytes

    def pending_bytes(self) -> int:
        """The memory held for requests not yet returned: unconsumed bytes,
        plus the arguments already read of a request still arriving. A
        server compares it with its client-query-buffer-limit."""
        big = self._big.tell() if self._big is not None else 0
        return len(self._buffer) - self._pos + self._args_bytes + big + self._ready_bytes

    def next_request(self) -> list[bytes] | None:
        """Return the next complete request, or None if more bytes are needed."""
        if self._ready:
            return self._take_ready(1)[0]
        while True:
            if self._args is None:
                if self._pos >= len(self._buffer):
                    return None
                if self._buffer[self._pos] == ASTERISK and (request := self._parse_whole_request()) is not None:
                    return request
                if self._buffer[self._pos] != ASTERISK:
                    self._lines = _NO_FAST_PATH  # its lines would no longer start at _pos
                    request = self._parse_inline()
                    if request is None or request:
                        return request
                    continue  # an empty line: Redis ignores it
                if not self._parse_multibulk_header():
                    return None
                if self._args is None:
                    continue  # "*0" or "*-1": an empty request, ignored
            if not self._parse_bulk_strings():
                return None
            request, self._args = self._args, None
            self._args_bytes = 0
            return request

    def next_requests(self) -> list[list[bytes]]:
        """Every request complete in the buffer that arrived whole and plain,
        in one pass (a server that runs a batch at a time saves a call per
        request, chapter 23); else the next request, as next_request would
        return it; empty if none is complete."""
        if self._ready:
            return self._take_ready(len(self._ready))
        if self._args is None and self._pos < len(self._buffer) and self._buffer[self._pos] == ASTERISK \
                and (requests := self._parse_whole_requests(len(self._buffer))):  # fmt: skip
            return requests
        request = self.next_request()
        return [] if request is None else [request]

    def put_back(self, requests: list[list[bytes]]) -> None:
        """Hand back requests taken with next_requests and not run (the
        server stopped in the middle of a batch): they come out first."""
        self._ready[:0] = requests
        self._ready_bytes += sum(len(arg) + 1 for request in requests for arg in request)

    def _take_ready(self, count: int) -> list[list[bytes]]:
        taken, self._ready[:count] = self._ready[:count], []
        self._ready_bytes -= sum(len(arg) + 1 for request in taken for arg in request)
        return taken

    def _parse_inline(self) -> list[bytes] | None:
        buffer = self._buffer
        end = buffer.find(b"\n", self._pos)
        # Redis checks the limit only while the newline has not arrived, so
        # whether it accepts a long line depends on how the bytes were split
        # into reads. We check complete lines too: the same input always
        # gets the same answer.
        if (end if end >= 0 else len(buffer)) - self._pos > self.max_inline_length:
            raise ProtocolError("Protocol error: too big inline request")
        if end < 0:
            return None
        line = bytes(buffer[self._pos : end]).rstrip(b"\r")
        self._pos = end + 1
        return split_inline_arguments(line)

    def _parse_multibulk_header(self) -> bool:
        count = self._read_length_line(
            b"*", "Protocol error: too big mbulk count string"
        )
        if count is None:
            return False
        if count is _INVALID or count > self.max_arguments:
            raise ProtocolError("Protocol error: invalid multibulk length")
        if count > 0:
            self._args = []
            self._args_missing = count
            self._args_bytes = 0
            self._bulk_length = -1
        return True

    def _parse_bulk_strings(self) -> bool:
        """Read the arguments of the current multibulk request; True when all arrived."""
        buffer = self._buffer
        args = self._args
        assert args is not None
        while self._args_missing:
            if self._bulk_length < 0:
                if self._pos >= len(buffer):
                    return False
                if buffer[self._pos] != ord("$"):
                    got = chr(buffer[self._pos])
                    raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
                length = self._read_length_line(
                    b"$", "Protocol error: too big bulk count string"
                )
                if length is None:
                    return False
                if length is _INVALID or length < 0 or length > self.max_bulk_length:
                    raise ProtocolError("Protocol error: invalid bulk length")
                self._bulk_length = length
            end = self._pos + self._bulk_length
            if self._big is not None:
                if self._big_missing:
                    return False
                args.append(self._finish_big_argument())
                end = self._pos - 2  # nothing more to take from _buffer for it
            # Like Redis, skip the two bytes after the payload without
            # checking that they are CRLF.
            elif len(buffer) < end + 2:
                if self._bulk_length >= BIG_ARGUMENT:
                    self._start_big_argument()
                return False
            elif self._bulk_length < BIG_ARGUMENT:
                args.append(bytes(buffer[self._pos : end]))
            else:
                with memoryview(buffer) as view:  # released at once: a viewed bytearray cannot grow
                    args.append(bytes(view[self._pos : end]))
            self._args_bytes += self._bulk_length
            self._pos = end + 2
            self._bulk_length = -1
            self._args_missing -= 1
        return True

    def _start_big_argument(self) -> None:
        """A big argument has begun to arrive: from now on its bytes go
        straight into a buffer of its final size, as Redis reads a big
        argument into place, instead of growing _buffer and then being
        copied out of it (two copies at the peak: 256 MB for a 128 MB SET).

        The buffer is a BytesIO over bytes(n): calloc'd, so pages cost RSS
        only as they are written; and since the BytesIO is the only owner,
        its writes go in place and getvalue() hands over that same bytes
        object, with no copy (CPython's BytesIO shares its buffer).
        """
        length = self._bulk_length + 2  # the payload and its CRLF
        self._big = io.BytesIO(bytes(length))
        with memoryview(self._buffer) as view:
            self._big.write(view[self._pos :])
        self._big_missing = length - (len(self._buffer) - self._pos)
        self._pos = len(self._buffer)

    def _finish_big_argument(self) -> bytes:
        big, self._big = self._big, None
        assert big is not None
        big.truncate(self._bulk_length)  # the CRLF is skipped unchecked, as Redis does
        value = big.getvalue()
        big.close()
        return value

    def _parse_whole_request(self) -> list[bytes] | None:
        """The fast path: a multibulk request that is complete in the buffer
        and plain (canonical lengths, no CRLF inside an argument), or None
        for anything else, which the incremental path then handles, errors
        included, from the same position."""
        requests = self._parse_whole_requests(1)
        return requests[0] if requests else None

    def _parse_whole_requests(self, most: int) -> list[list[bytes]]:
        """Up to `most` requests complete in the buffer and plain, read in
        one pass; fewer (none) where the first that is not starts.

        What was received is split at every CRLF once per feed, by one call
        in C, and requests are then read off the list of lines: a request
        is a "*<count>" line, then a "$<length>" line and a payload line
        per argument, so the payloads are the arguments themselves, with no
        further copying. Checking each length line against its payload
        (`line == b"$%d" % len(payload)`) checks both that the length is
        spelled canonically and that no CRLF inside an argument split it.
        Nearly every request arrives whole; this halves the parser's time,
        the largest share of a request's (measured: 2.3 to 1.8 us per SET
        read alone, 2.1 to 1.0 us per SET in a pipeline of 16).

        A pipeline repeats one command: when the next request has the
        same header, the run of them is checked at once (_check_run, a
        column of length lines per list comparison; chapter 23's README
        has the measurement), and where the unparsed bytes start is
        counted once at the end, over the lines taken or those left.

        After the first request this path cannot take, it stays off until
        the next feed: the lines no longer match the buffer's position once
        the incremental path moves it, and splitting again per request
        would cost O(n) each time.
        """
        lines = self._lines
        if lines is None:
            with memoryview(self._buffer) as view:  # released at once: a viewed bytearray cannot grow
                lines = self._lines = bytes(view[self._pos :]).split(CRLF)
            self._line = 0
        elif lines is _NO_FAST_PATH:
            return []
        requests: list[list[bytes]] = []
        start = first = self._line
        last_line = len(lines) - 1
        one_by_one_until = 0  # the line before which runs are not checked again
        max_arguments, max_bulk_length = self.max_arguments, self.max_bulk_length
        while len(requests) < most:
            header = lines[first]
            # A table lookup parses and checks the usual headers and lengths
            # at once (canonical: only canonical spellings are in the table).
            count = _COUNT_OF.get(header) or _parse_count_line(header)
            span = 2 * count + 1  # a request's lines; a complete one has a line after it
            if count <= 0 or count > max_arguments or first + span > last_line:
                break  # not plain (or "*" at all), or not complete: the incremental path's
            if first >= one_by_one_until and first + 2 * span <= last_line and lines[first + span] == header \
                    and max_bulk_length >= _TABLED:  # fmt: skip
                # The next request has as many arguments: check the run at once.
                run = _check_run(lines, first, span, min((last_line - first) // span, most - len(requests), RUN))
                if run:
                    end = first + run * span
                    requests += [lines[line + 2 : line + span : 2] for line in range(first, end, span)]
                    first = end
                    continue
                one_by_one_until = first + RUN * span  # not all plain: these one at a time, each run checked once
            for index in range(first + 1, first + span - 1, 2):
                length_line, length = lines[index], len(lines[index + 1])
                if length_line != (_LENGTH_LINES[length] if length < _TABLED else b"$%d" % length) \
                        or length > max_bulk_length:  # fmt: skip
                    break
            else:
                requests.append(lines[first + 2 : first + span : 2])
                first += span
                continue
            break
        # Where the buffer's unparsed bytes now start: counted over the
        # lines taken or over those left, whichever are fewer (one request
        # at a time, or a whole batch).
        if first - start <= last_line - first:
            self._pos += sum(map(len, lines[start:first])) + 2 * (first - start)
        else:
            self._pos = len(self._buffer) - sum(map(len, lines[first:])) - 2 * (last_line - first)
        self._line = first
        if len(requests) < most:
            self._lines = _NO_FAST_PATH
        return requests

    def _read_length_line(self, kind: bytes, too_big_message: str) -> int | object | None:
        """Parse "<kind><integer>\\r\\n" at the current position.

        Returns the integer, _INVALID if the line is not a valid integer, or
        None if the line is not complete yet.
        """
        buffer = self._buffer
        end = buffer.find(CRLF, self._pos)
        if (end if end >= 0 else len(buffer)) - self._pos > self.max_inline_length:
            raise ProtocolError(too_big_message)  # checked as in _parse_inline
        if end < 0:
            return None
        value = parse_integer(bytes(buffer[self._pos + 1 : end]))
        self._pos = end + 2
        return _INVALID if value is None else value


_INVALID = object()
# The request header and length lines most requests have, spelled as they
# must be: "*<count>" -> count, and "$<length>" by length.
_TABLED = 1024
_COUNT_OF = {b"*%d" % count: count for count in range(1, _TABLED)}
_LENGTH_LINES = tuple(b"$%d" % length for length in range(_TABLED))
# At most so many requests checked as one run: each run's slices then cost
# no more than that, whatever a pipeline's mix of commands.
RUN = 32
MIN_RUN = 4  # shorter runs cost less checked one request at a time (measured)
_LENGTH_LINE_OF = dict(enumerate(_LENGTH_LINES))  # .get: None past the table, which no line equals


def _check_run(lines: list[bytes], first: int, span: int, most: int) -> int:
    """How many of the `most` complete requests from line `first`, each
    `span` lines long, share its header and are plain, checked a column at
    a time: the n-th length line of every request in the run against the
    n-th payloads' lengths, by list comparisons in C instead of a Python
    loop per argument. 0 when the run is shorter than MIN_RUN or a check
    fails (a long argument, not in the table, or a request that is not
    plain): the loop per argument then checks them one at a time."""
    headers = lines[first : first + most * span : span]
    if headers.count(headers[0]) != most:  # a different command count further on: the run stops there
        most = next(index for index, header in enumerate(headers) if header != headers[0])
    if most < MIN_RUN:
        return 0
    end = first + most * span
    for column in range(first + 1, first + span - 1, 2):
        if lines[column:end:span] != list(map(_LENGTH_LINE_OF.get, map(len, lines[column + 1 : end : span]))):
            return 0  # a long argument (not in the table) or not plain: request by request
    return most


def _parse_count_line(header: bytes) -> int:
    """The count of a "*<count>" line spelled canonically, else 0."""
    digits = header[1:]
    count = int(digits) if header[:1] == b"*" and 0 < len(digits) <= 19 and digits.isdigit() else 0
    return count if header == b"*%d" % count else 0
_NO_FAST_PATH: list[bytes] = []  # RequestParser._lines: not until the next feed

_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("a"): b"\a",
}
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_WHITESPACE = b" \t\r\n\v\f\0"


def split_inline_arguments(line: bytes) -> list[bytes]:
    """Split an inline command line into arguments, as Redis's sdssplitargs.

    Arguments are separated by whitespace. Double quotes allow spaces and
    the escapes ``\\n \\r \\t \\b \\a \\\\ \\" \\xHH``; single quotes allow
    spaces and ``\\'``. A closing quote must be followed by whitespace.
    """
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _WHITESPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        quote = 0  # the open quote character, 0 outside quotes
        while True:
            if quote == ord('"'):
                if i >= n:
                    raise ProtocolError("Protocol error: unbalanced quotes in request")
                c = line[i]
                if (
                    c == ord("\\")
                    and i + 3 < n
                    and line[i + 1] == ord("x")
                    and line[i + 2] in _HEX_DIGITS
                    and line[i + 3] in _HEX_DIGITS
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == ord("\\") and i + 1 < n:
                    i += 1
                    current += _ESCAPES.get(line[i], bytes((line[i],)))
                elif c == ord('"'):
                    if i + 1 < n and line[i + 1] not in _WHITESPACE:
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    i += 1
                    break
                else:
                    current.append(c)
            elif quote == ord("'"):
                if i >= n:
                    raise ProtocolError("Protocol error: unbalanced quotes in request")
                c = line[i]
                if c == ord("\\") and i + 1 < n and line[i + 1] == ord("'"):
                    i += 1
                    current.append(ord("'"))
                elif c == ord("'"):
                    if i + 1 < n and line[i + 1] not in _WHITESPACE:
                        raise ProtocolError("Protocol error: unbalanced quotes in request")
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n or line[i] in _WHITESPACE:
                    break
                c = line[i]
                if c in (ord('"'), ord("'")):
                    quote = c
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


# --- RESP2 replies -----------------------------------------------------------
# Each appends one reply to `out`, the connection's output buffer.


def write_simple(out: bytearray, text: str) -> None:
    """A status reply such as +OK or +PONG (must not contain CR or LF)."""
    reply = _STATUS_REPLIES.get(text)
    if reply is None:
        reply = b"+%s\r\n" % text.encode()
        if len(_STATUS_REPLIES) < 64:  # status texts come from the code, a handful; bounded all the same
            _STATUS_REPLIES[text] = reply
    out += reply


# "OK" -> b"+OK\r\n": every SET answers OK; encoding it once saves that work per request.
_STATUS_REPLIES: dict[str, bytes] = {}


def write_error(out: bytearray, message: str) -> None:
    """An error reply; `message` starts with its code, e.g. "ERR syntax error".

    CR and LF would end the reply early, so they become spaces, as in Redis.
    """
    out += b"-%s\r\n" % message.replace("\r", " ").replace("\n", " ").encode(errors="surrogateescape")


def write_integer(out: bytearray, value: int) -> None:
    out += b":%d\r\n" % value


def write_bulk(out: bytearray, data: bytes) -> None:
    """A binary-safe string."""
    out += b"$%d\r\n%s\r\n" % (len(data), data)


def write_null(out: bytearray) -> None:
    """RESP2's nil: the null bulk string, e.g. GET of a missing key."""
    out += b"$-1\r\n"


def write_array_header(out: bytearray, length: int) -> None:
    """Start an array; the caller then writes `length` replies."""
    out += b"*%d\r\n" % length


def write_bulk_array(out: bytearray, items: list[bytes]) -> None:
    """An array of bulk strings, e.g. the reply to KEYS."""
    write_array_header(out, len(items))
    for item in items:
        write_bulk(out, item)


def encode_command(*args: bytes | str | int) -> bytes:
    """Encode a request as a multibulk array, the way clients send commands."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)
