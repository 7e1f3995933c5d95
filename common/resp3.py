"""Typed replies, written in the protocol each client chose: RESP2 or RESP3.

Introduced in chapter 09 (Data Serialization). The book's chapter gives
replies types (nil, error, string, integer, double, array) so a client can
tell a missing key from an empty string, or the number 1 from the string
"1". RESP2 already has most of these; RESP3, which a client asks for with
HELLO 3, adds what RESP2 must fake:

    type      RESP3              RESP2 stand-in
    null      _\\r\\n              $-1\\r\\n (the null bulk string)
    double    ,1.5\\r\\n           $3\\r\\n1.5\\r\\n (a bulk string)
    boolean   #t\\r\\n             :1\\r\\n (an integer)
    map       %2\\r\\n k v k v     *4\\r\\n k v k v (a flat array)
    set       ~2\\r\\n a b         *2\\r\\n a b (an array)
    push      >3\\r\\n ...         *3\\r\\n ... (an array; chapter 19's messages)

Commands write typed replies; `ReplyBuffer` turns each into the bytes of
the connection's protocol. So a command is written once and serves both
kinds of client, just as in Redis. `hello` is the HELLO command, the
handshake by which a client chooses.
"""

from __future__ import annotations

import math

from common.commands import REDIS_VERSION
from common.resp import parse_integer, write_array_header, write_bulk, write_error, write_integer, write_simple


class ReplyBuffer(bytearray):
    """A connection's output buffer that writes typed replies.

    It is the bytearray the event loop sends from (and trims from the
    front). It also holds what replies depend on about the client:
    `protocol`, 2 until the client switches with HELLO 3, and `client_id`,
    the connection's number, which HELLO reports.
    """

    __slots__ = ("protocol", "client_id")

    def __init__(self, client_id: int = 0) -> None:
        super().__init__()
        self.protocol = 2
        self.client_id = client_id

    # Strings, errors, integers and arrays are the same in both protocols:
    # the write_* functions themselves serve as the methods (`out.bulk(data)`
    # calls write_bulk(out, data)), one Python call per reply instead of two.
    simple = write_simple  # a status reply such as OK or PONG (no CR or LF)
    error = write_error  # `message` starts with its code, e.g. "ERR syntax error"
    integer = write_integer
    bulk = write_bulk  # a binary-safe string

    def null(self) -> None:
        """Nothing there, e.g. GET of a missing key."""
        self += b"_\r\n" if self.protocol == 3 else b"$-1\r\n"

    def null_array(self) -> None:
        """No array: a blocking pop that timed out, a transaction whose watched key changed."""
        self += b"_\r\n" if self.protocol == 3 else b"*-1\r\n"

    def double(self, value: float) -> None:
        """A floating-point number, formatted as Redis 7.0 does (%.17g, inf, -inf)."""
        text = format_double(value)
        if self.protocol == 3:
            self += b",%s\r\n" % text
        else:
            self.bulk(text)

    def boolean(self, value: bool) -> None:
        if self.protocol == 3:
            self += b"#t\r\n" if value else b"#f\r\n"
        else:
            self.integer(1 if value else 0)

    array = write_array_header  # start an array; the caller then writes `length` replies

    def push(self, length: int) -> None:
        """Start data the server pushes unasked (a pub/sub message): RESP3's
        push type, which a client tells from the reply it waits for; an
        array in RESP2, where a subscribed client expects nothing else."""
        self += b">%d\r\n" % length if self.protocol == 3 else b"*%d\r\n" % length

    def map(self, length: int) -> None:
        """Start a map of `length` pairs; the caller then writes key, value, key, value..."""
        if self.protocol == 3:
            self += b"%%%d\r\n" % length
        else:
            self.array(length * 2)

    def set(self, length: int) -> None:
        """Start a set: an unordered collection without duplicates."""
        self += b"~%d\r\n" % length if self.protocol == 3 else b"*%d\r\n" % length

    def bulk_array(self, items: list[bytes]) -> None:
        """An array of bulk strings, e.g. the reply to KEYS."""
        self.array(len(items))
        for item in items:
            self.bulk(item)


def format_double(value: float) -> bytes:
    """Redis 7.0's text for a double: up to 17 significant digits, or inf/-inf/nan."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


def hello(args: list[bytes], out: ReplyBuffer) -> None:
    """HELLO [protover [AUTH username password] [SETNAME name]]: choose RESP2
    or RESP3 for this connection and describe the server, as a map."""
    protocol = out.protocol
    if args:
        protocol = parse_integer(args[0])
        if protocol is None:
            out.error("ERR Protocol version is not an integer or out of range")
            return
        if protocol not in (2, 3):
            out.error("NOPROTO unsupported protocol version")
            return
    username = client_name = None
    i = 1
    while i < len(args):
        option, more = args[i].lower(), len(args) - 1 - i
        if option == b"auth" and more >= 2:
            username = args[i + 1]
            i += 3
        elif option == b"setname" and more >= 1:
            client_name = args[i + 1]
            i += 2
        else:
            out.error(f"ERR Syntax error in HELLO option '{args[i].decode(errors='surrogateescape')}'")
            return
    # With no password configured, Redis's only user, "default", takes any
    # password; we have no other users.
    if username is not None and username != b"default":
        out.error("WRONGPASS invalid username-password pair or user is disabled.")
        return
    # Redis shows the name in CLIENT LIST, which we do not have; we check it
    # as Redis does, and keep nothing.
    if client_name is not None and any(byte < ord("!") or byte > ord("~") for byte in client_name):
        out.error("ERR Client names cannot contain spaces, newlines or special characters.")
        return
    out.protocol = protocol
    out.map(7)
    for field, value in [
        (b"server", b"redis"),
        (b"version", REDIS_VERSION.encode()),
        (b"proto", protocol),
        (b"id", out.client_id),
        (b"mode", b"standalone"),
        (b"role", b"master"),
    ]:
        out.bulk(field)
        if isinstance(value, int):
            out.integer(value)
        else:
            out.bulk(value)
    out.bulk(b"modules")
    out.array(0)
