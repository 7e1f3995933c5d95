"""Chapter 21 (beyond the book): the server's view of its clients.

What an operator types first into redis-cli against a server they did not
write is CLIENT LIST; what they reach for next, when something is slow,
is SLOWLOG and MONITOR. Every chapter so far kept a connection's state in
the objects that serve it (chapter 14's Connection, chapter 18's
transaction, chapter 19's subscriptions); this chapter gathers what each
says about its client, as Redis's `client` struct does, and reports it.

* A `Client` per connection, made when it connects (chapter 14's
  accept_tasks, Redis's createClient) and dropped when it closes: its id,
  addresses, age, idle time, name, last command.
* CLIENT LIST and INFO print Redis 7.0's line for each client, every
  field in its order, read from the chapters that hold it (`client_line`);
  CLIENT ID, SETNAME, GETNAME, KILL (by address, id, type, user, age),
  REPLY ON|OFF|SKIP, PAUSE and UNPAUSE (pause.py), UNBLOCK, NO-EVICT.
* MONITOR (watching.py): every command any client runs, as it runs, to
  the clients that asked (`feed_monitors`, after each call, as Redis's
  call() does).
* SLOWLOG: the commands that took longer than `slowlog-log-slower-than`
  microseconds, the last `slowlog-max-len` of them.
* INFO with every field of Redis 7.0's default sections, in its order
  (info.py), and errors counted by code (# Errorstats).
* COMMAND GETKEYS, GETKEYSANDFLAGS (key_specs.py), LIST and DOCS
  (command_docs.py), from the key positions chapter 14's table
  already has.

Everything else is chapter 20's server, imported unchanged; what this
chapter adds registers into the seams of the chapters before: a check
before every command (its client's last command, a pause), a listener
after it (reply modes, the monitors, the slow log), the client's arrival
and departure, RESET.

    make run-chapter 21
    redis-cli CLIENT SETNAME me
    redis-cli CLIENT LIST
    redis-cli MONITOR                  # in another terminal, then run commands
"""

from __future__ import annotations

import math
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter, load_chapter_module  # noqa: E402
from common.commands import (  # noqa: E402
    CommandSpec,
    client as client_setinfo,
    unknown_subcommand_message,
    write_help,
    wrong_arity_message,
)
from common.glob import compile_glob  # noqa: E402
from common.net import fail  # noqa: E402
from common.resp import parse_integer  # noqa: E402
from common.resp3 import ReplyBuffer, hello  # noqa: E402

chapter20 = load_chapter(20)  # the server this chapter extends: every type, and everything before
chapter19 = chapter20.chapter19  # subscriptions (sub, psub, ssub; the pubsub type)
chapter18 = chapter19.chapter18  # transactions (multi, multi-mem; RESET)
chapter17 = chapter20.chapter17  # blocked clients (CLIENT UNBLOCK)
chapter16 = chapter20.chapter16  # start-up
chapter14 = chapter20.chapter14  # the connections, the command table
COMMANDS = chapter14.COMMANDS
acl = load_chapter_module(21, "acl")  # users, and what each may do
access = load_chapter_module(21, "access")  # who may connect and run commands: AUTH, protected mode
info = load_chapter_module(21, "info")  # INFO completed to Redis 7.0's fields, in its order
key_specs = load_chapter_module(21, "key_specs")  # what a command does to each of its keys
command_docs = load_chapter_module(21, "command_docs")  # COMMAND DOCS: each command's summary, since, arguments
pause = load_chapter_module(21, "pause")  # CLIENT PAUSE and UNPAUSE
watching = load_chapter_module(21, "watching")  # MONITOR and SLOWLOG

# Commands with subcommands: a client's last command is named "client|list", as Redis names it.
CONTAINERS = {b"client", b"config", b"command", b"object", b"memory", b"pubsub", b"slowlog", b"acl", b"script",
              b"function", b"xinfo", b"xgroup", b"cluster", b"module", b"latency"}  # fmt: skip
CLIENT_TYPES = ("normal", "master", "replica", "slave", "pubsub")
# What a Connection costs beyond its buffers (the objects that serve it), for tot-mem.
CLIENT_OVERHEAD = 1500


# --- who is connected -----------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Client:
    """What the server knows of one connection (Redis's client struct, the
    parts no other chapter keeps)."""

    conn: Any  # chapter 14's Connection
    address: str  # the peer's ip:port
    local_address: str  # ours
    fd: int
    created: float  # time.time()
    last_interaction: float
    name: bytes = b""
    last_command: str = "NULL"
    argv_memory: int = 0  # the bytes of the command it runs now
    reply: str = "on"  # CLIENT REPLY: on, off, skip-next, skip (this command's reply)
    no_evict: bool = False
    output_peak: int = 0  # the most output it had waiting, after a command
    authenticated: bool = True  # as `user` (access.py)
    user: bytes = b"default"  # its ACL user (acl.py)


clients: dict[Any, Client] = {}  # connection -> its Client, in the order they came (Redis's server.clients)


def client_connected(conn: Any) -> None:
    """A new connection (chapter 14's accept_tasks). Protected mode may
    refuse it at once, with Redis's explanation."""
    now = time.time()
    try:
        peer, local = conn.sock.getpeername(), conn.sock.getsockname()
    except OSError:  # reset by the client before we got to it: Redis's "?:0", and closed at once
        clients[conn] = Client(conn, "?:0", "?:0", conn.sock.fileno(), now, now, authenticated=False)
        conn.closing = True
        chapter14.clients_pending_write[id(conn)] = conn
        return
    clients[conn] = Client(conn, address_text(peer), address_text(local), conn.sock.fileno(), now, now,
                           authenticated=not access.needs_password())  # fmt: skip
    if access.refused_as_unprotected(peer[0]):
        conn.outgoing.error(access.DENIED)
        conn.closing = True  # once the explanation is sent; nothing it sends is run
        chapter14.clients_pending_write[id(conn)] = conn


def client_closed(conn: Any) -> None:
    """A connection closed (chapter 14's close_tasks)."""
    clients.pop(conn, None)
    watching.monitors.pop(conn, None)


def address_text(address: tuple) -> str:
    return f"{address[0]}:{address[1]}"


def note_command(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Before a command, first of chapter 14's checks: it is its client's
    last command now (even if refused), and what its arguments cost; a
    skipped reply starts here. Answers nothing."""
    client = clients.get(chapter14.current_client)
    if client is not None:
        client.last_command = (f"{name.decode(errors='replace')}|{args[0].lower().decode(errors='replace')}"
                               if name in CONTAINERS and args else name.decode(errors="replace"))  # fmt: skip
        client.last_interaction = time.time()
        client.argv_memory = len(name) + sum(map(len, args))
        if client.reply == "skip-next":
            client.reply = "skip"
    return False


# --- AUTH ---------------------------------------------------------------------------------------


def require_auth(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Before a command, second of chapter 14's checks (after a command
    is known and has its arguments, as Redis's processCommand): a client
    that must authenticate may run only AUTH, HELLO, QUIT and RESET."""
    client = clients.get(chapter14.current_client)
    if client is None or client.authenticated or not access.needs_password() \
            or "no_auth" in spec.flags:  # fmt: skip
        return False
    out.error(access.NOAUTH)
    return True


def auth(args: list[bytes], out: ReplyBuffer) -> None:
    """AUTH [username] password"""
    if len(args) > 2:
        out.error("ERR syntax error")
        return
    if len(args) == 1 and not access.needs_password():
        out.error(access.NO_PASSWORD_CONFIGURED)
        return
    username, password = (b"default", args[0]) if len(args) == 1 else args
    if access.authenticate(username, password):
        client = current()
        client.authenticated, client.user = True, username
        out.simple("OK")
    else:
        refuse_authentication(username, out)


def refuse_authentication(username: bytes, out: ReplyBuffer) -> None:
    """A wrong password (or a user off or unknown): WRONGPASS, and an ACL LOG entry, as Redis."""
    client = current()
    acl.add_log_entry("auth", "toplevel", COMMANDS.request_name, username, client_line(client))
    out.error(access.WRONGPASS)


def hello_with_auth(args: list[bytes], out: ReplyBuffer) -> None:
    """HELLO [protover [AUTH username password] [SETNAME name]]: common/resp3.py's,
    with its AUTH checked against the default user's password, and its
    SETNAME kept as the client's name."""
    client = current()
    options = [arg.lower() for arg in args]
    at = options.index(b"auth", 1) if b"auth" in options[1:] else -1
    if at > 0 and at + 2 < len(args):
        if not access.authenticate(args[at + 1], args[at + 2]):
            refuse_authentication(args[at + 1], out)
            return
        client.authenticated, client.user = True, args[at + 1]
        args = args[:at] + args[at + 3 :]  # common/resp3.py's HELLO knows of no user but default
    elif not client.authenticated and access.needs_password():
        out.error(access.HELLO_NOAUTH)
        return
    reply_start = len(out)
    hello(args, out)
    options = [arg.lower() for arg in args]
    named = options.index(b"setname", 1) if b"setname" in options[1:] else -1
    if out[reply_start : reply_start + 1] != b"-" and 0 < named < len(args) - 1:
        client.name = args[named + 1]


def check_acl(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Before a command, after chapter 18's check of what may not run in
    MULTI (Redis's order): may the client's user run it, on these keys and
    channels? One test while the user may do everything (the default)."""
    client = clients.get(chapter14.current_client)
    user = acl.users.get(client.user) if client is not None else None
    if user is None or user.unrestricted():
        return False
    found = acl.denial(user, name, spec, args)
    if found is None:
        return False
    reason, refused = found
    transaction = chapter18.transactions.get(client.conn)
    context = "multi" if transaction is not None and transaction.in_multi else "toplevel"
    acl.add_log_entry(reason, context, refused, client.user, client_line(client))
    out.error(acl.NOPERM[reason].format(refused.decode(errors="replace")))
    return True


def acl_command(args: list[bytes], out: ReplyBuffer) -> None:
    acl.acl_command(args, out, COMMANDS.commands)


def disconnect_user(name: bytes) -> None:
    """ACL DELUSER: the deleted user's clients are closed (Redis's freeClient of each)."""
    for client in list(clients.values()):
        if client.user == name:
            if client.conn is chapter14.current_client:
                client.conn.closing = True
            else:
                disconnect(client.conn)


# --- CLIENT LIST -----------------------------------------------------------------------------


def client_type(conn: Any) -> str:
    """Redis's getClientType, as CLIENT LIST and KILL name it: normal, pubsub (or replica, for a server that has them)."""
    found = chapter19.client_class(conn)
    return "replica" if found == "slave" else found


# A server built on this one may mark its own clients: each gives the
# flags it sets ("S" for a replica), which come first, as in Redis.
more_client_flags: list[Callable[[Any], str]] = []


def client_line(client: Client) -> str:
    """Redis 7.0's line for a client, every field in its order, each read
    from the chapter that holds it."""
    conn = client.conn
    subscriber = chapter19.subscribers.get(conn)
    transaction = chapter18.transactions.get(conn)
    in_multi = transaction is not None and transaction.in_multi
    flags = "".join(more(conn) for more in more_client_flags) + "".join(flag for flag, on in (
        ("O", conn in watching.monitors), ("P", subscriber is not None), ("x", in_multi), ("b", conn.blocked),
        ("d", transaction is not None and transaction.touched), ("c", conn.closing), ("e", client.no_evict),
    ) if on) or "N"  # fmt: skip
    now = time.time()
    query, reply_buffer, argv, multi_memory = memory_of(client)
    output = len(conn.outgoing)
    events = ("r" if conn.polled_events & select.POLLIN else "") + ("w" if conn.polled_events & select.POLLOUT else "")
    fields = [
        ("id", conn.outgoing.client_id), ("addr", client.address), ("laddr", client.local_address),
        ("fd", client.fd), ("name", client.name.decode(errors="replace")), ("age", int(now - client.created)),
        ("idle", int(now - client.last_interaction)), ("flags", flags), ("db", 0),
        ("sub", len(subscriber.channels) if subscriber else 0), ("psub", len(subscriber.patterns) if subscriber else 0),
        ("ssub", len(subscriber.shard_channels) if subscriber else 0),
        ("multi", len(transaction.queued) if in_multi else -1), ("qbuf", query), ("qbuf-free", 0),
        ("argv-mem", argv), ("multi-mem", multi_memory), ("rbs", reply_buffer), ("rbp", client.output_peak),
        ("obl", output), ("oll", 0), ("omem", output),
        ("tot-mem", CLIENT_OVERHEAD + query + reply_buffer + argv + multi_memory), ("events", events),
        ("cmd", client.last_command), ("user", client.user.decode(errors="replace")), ("redir", -1), ("resp", conn.outgoing.protocol),
    ]  # fmt: skip
    return " ".join(f"{name}={value}" for name, value in fields)


def memory_of(client: Client) -> tuple[int, int, int, int]:
    """What a client's buffers hold, as CLIENT LIST counts them (qbuf, rbs,
    argv-mem, multi-mem): its unparsed input, its reply buffer's allocation,
    the arguments of the command it runs, those of the commands it queued."""
    conn = client.conn
    transaction = chapter18.transactions.get(conn)
    argv = client.argv_memory if conn is chapter14.current_client else 0
    # The queued commands' arguments and a pointer to each, as Redis counts them (its argv_len_sums).
    multi_memory = sum(len(name) + sum(map(len, args)) + 8 * (1 + len(args)) for name, _, args in transaction.queued) \
        if transaction is not None and transaction.in_multi else 0  # fmt: skip
    reply_buffer = sys.getsizeof(conn.outgoing) - sys.getsizeof(bytearray())  # what its reply buffer holds allocated
    return conn.parser.buffered(), reply_buffer, argv, multi_memory


def write_text(out: ReplyBuffer, text: str) -> None:
    """A text reply: RESP3's verbatim string ("txt"), a bulk string in RESP2, as Redis."""
    data = text.encode()
    if out.protocol == 3:
        out += b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)
    else:
        out.bulk(data)


# --- the CLIENT command ------------------------------------------------------------------------

# Subcommand -> its arity, the subcommand's name counted (Redis's client|list and kin).
CLIENT_ARITY = {b"help": 2, b"id": 2, b"info": 2, b"list": -2, b"reply": 3, b"no-evict": 3, b"kill": -3,
                b"unblock": -3, b"setname": 3, b"getname": 2, b"pause": -3, b"unpause": 2, b"setinfo": -4}  # fmt: skip


def client_command(args: list[bytes], out: ReplyBuffer) -> None:
    subcommand = args[0].lower()
    arity = CLIENT_ARITY.get(subcommand)
    if arity is None:
        out.error(unknown_subcommand_message(args[0], "CLIENT"))
        return
    count = len(args) + 1  # the arity counts CLIENT too
    if count != arity if arity > 0 else count < -arity:
        out.error(wrong_arity_message(b"client|" + subcommand))
        return
    handler = {b"help": client_help, b"id": client_id, b"info": client_info, b"list": client_list,
               b"reply": client_reply, b"no-evict": client_no_evict, b"kill": client_kill,
               b"unblock": client_unblock, b"setname": client_setname, b"getname": client_getname,
               b"pause": pause.client_pause, b"unpause": pause.client_unpause, b"setinfo": client_setinfo}[subcommand]  # fmt: skip
    handler(args if handler is client_setinfo else args[1:], out)


def current() -> Client:
    return clients[chapter14.current_client]


def client_id(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(out.client_id)


def client_info(args: list[bytes], out: ReplyBuffer) -> None:
    write_text(out, client_line(current()) + "\n")


def client_list(args: list[bytes], out: ReplyBuffer) -> None:
    """CLIENT LIST [TYPE type | ID id [id ...]]"""
    chosen = list(clients.values())
    if len(args) == 2 and args[0].lower() == b"type":
        wanted = args[1].lower().decode(errors="replace")
        if wanted not in CLIENT_TYPES:
            out.error(f"ERR Unknown client type '{args[1].decode(errors='replace')}'")
            return
        chosen = [client for client in chosen if client_type(client.conn) == {"slave": "replica"}.get(wanted, wanted)]
    elif len(args) > 1 and args[0].lower() == b"id":
        ids = [parse_integer(arg) for arg in args[1:]]
        if None in ids:
            out.error("ERR Invalid client ID")
            return
        by_id = {client.conn.outgoing.client_id: client for client in chosen}
        chosen = [by_id[number] for number in ids if number in by_id]
    elif args:
        out.error("ERR syntax error")
        return
    write_text(out, "".join(client_line(client) + "\n" for client in chosen))


def client_reply(args: list[bytes], out: ReplyBuffer) -> None:
    """CLIENT REPLY ON | OFF | SKIP: OFF drops every reply from now on,
    SKIP the next command's; neither is answered, ON is."""
    mode = args[0].lower()
    client = current()
    if mode == b"on":
        client.reply = "on"
        out.simple("OK")
    elif mode == b"off":
        client.reply = "off"
    elif mode == b"skip":
        if client.reply != "off":
            client.reply = "skip-next"
    else:
        out.error("ERR syntax error")


SUBSCRIPTION_COMMANDS = {b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe"}


def drop_muted_reply(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After a command (chapter 14's after_call): a client that turned its
    replies off, or skips this one, gets nothing. Inside EXEC only the
    whole EXEC's reply counts."""
    client = clients.get(chapter14.current_client)
    if client is not None and not COMMANDS.nesting and client.reply in ("off", "skip"):
        # (Un)subscribe confirmations are pushed, not replied: they still arrive (Redis's CLIENT_PUSHING).
        if name not in SUBSCRIPTION_COMMANDS:
            del out[reply_start:]
        if client.reply == "skip":
            client.reply = "on"


def drop_muted_error(name: bytes, out: ReplyBuffer, reply_start: int) -> None:
    """A command refused before it ran (chapter 14's on_reject): its error too."""
    drop_muted_reply(name, None, [], out, reply_start)  # type: ignore[arg-type]


def client_no_evict(args: list[bytes], out: ReplyBuffer) -> None:
    """CLIENT NO-EVICT ON | OFF: shown in CLIENT LIST (flag e). This server
    evicts no client (no maxmemory-clients), so there is nothing more to protect."""
    mode = args[0].lower()
    if mode not in (b"on", b"off"):
        out.error("ERR syntax error")
        return
    current().no_evict = mode == b"on"
    out.simple("OK")


def client_setname(args: list[bytes], out: ReplyBuffer) -> None:
    name = args[0]
    if any(byte < ord("!") or byte > ord("~") for byte in name):
        out.error("ERR Client names cannot contain spaces, newlines or special characters.")
        return
    current().name = name
    out.simple("OK")


def client_getname(args: list[bytes], out: ReplyBuffer) -> None:
    name = current().name
    out.bulk(name) if name else out.null()


def client_kill(args: list[bytes], out: ReplyBuffer) -> None:
    """CLIENT KILL ip:port (the old form) | CLIENT KILL [ID id] [ADDR ip:port]
    [LADDR ip:port] [TYPE type] [USER name] [SKIPME yes|no] [MAXAGE seconds]"""
    address = local = wanted_type = user = None
    client_id_, max_age, skip_me = 0, 0, len(args) != 1
    if len(args) == 1:
        address = args[0].decode(errors="replace")
    elif len(args) % 2:
        out.error("ERR syntax error")
        return
    for option, value in zip(args[0::2], args[1::2]) if len(args) > 1 else ():
        option = option.lower()
        text = value.decode(errors="replace")
        if option == b"id":
            client_id_ = parse_integer(value)
            if client_id_ is None or client_id_ < 1:
                out.error("ERR client-id should be greater than 0")
                return
        elif option == b"type":
            if text.lower() not in CLIENT_TYPES:
                out.error(f"ERR Unknown client type '{text}'")
                return
            wanted_type = {"slave": "replica"}.get(text.lower(), text.lower())
        elif option == b"addr":
            address = text
        elif option == b"laddr":
            local = text
        elif option == b"user":
            if value not in acl.users:
                out.error(f"ERR No such user '{text}'")
                return
            user = value
        elif option == b"skipme" and value.lower() in (b"yes", b"no"):
            skip_me = value.lower() == b"yes"
        elif option == b"maxage":
            max_age = parse_integer(value)
            if max_age is None:
                out.error("ERR value is not an integer or out of range")
                return
        else:
            out.error("ERR syntax error")
            return
    me = chapter14.current_client
    now = time.time()
    killed = 0
    for client in list(clients.values()):
        conn = client.conn
        if (address is not None and client.address != address) or (local is not None and client.local_address != local) \
                or (wanted_type is not None and client_type(conn) != wanted_type) \
                or (client_id_ and conn.outgoing.client_id != client_id_) or (user is not None and client.user != user) \
                or (max_age and now - client.created < max_age) or (conn is me and skip_me):  # fmt: skip
            continue
        killed += 1
        if conn is me:
            conn.closing = True  # once this reply is sent (Redis's CLOSE_AFTER_REPLY)
        else:
            disconnect(conn)
    if len(args) == 1:
        out.error("ERR No such client") if not killed else out.simple("OK")
    else:
        out.integer(killed)


def disconnect(conn: Any) -> None:
    """Close another client at once, its unsent output dropped (Redis's freeClient)."""
    conn.outgoing.clear()
    conn.closing = True
    chapter14.clients_pending_write[id(conn)] = conn  # closed in before_sleep


@dataclass(slots=True)
class OtherBlocking:
    """Clients blocked other than by chapter 17's blocking commands (a
    server built on this one registers its kind: WAIT's): INFO counts them
    (blocked_clients, clients_in_timeout_table), CLIENT UNBLOCK releases them."""

    blocked: Callable[[], dict[Any, float]]  # connection -> its deadline (math.inf: none)
    release: Callable[[Any, bool], None]  # answer it as if its time were up, or with the error (True)


other_blocking: list[OtherBlocking] = []


def blocked_elsewhere() -> dict[Any, float]:
    """Every client blocked by a kind in other_blocking, with its deadline."""
    return {conn: deadline for kind in other_blocking for conn, deadline in kind.blocked().items()}


def client_unblock(args: list[bytes], out: ReplyBuffer) -> None:
    """CLIENT UNBLOCK id [TIMEOUT | ERROR]: a client parked by a blocking
    command (chapter 17's park) is answered as if its timeout passed, or
    with an error."""
    if len(args) > 2:
        out.error("ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.")
        return
    error = False
    if len(args) == 2:
        if args[1].lower() not in (b"timeout", b"error"):
            out.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
            return
        error = args[1].lower() == b"error"
    target_id = parse_integer(args[0])
    if target_id is None:
        out.error("ERR value is not an integer or out of range")
        return
    target = next((client.conn for client in clients.values() if client.conn.outgoing.client_id == target_id), None)
    record = chapter17.parked.get(id(target)) if target is not None else None
    if record is None:
        kind = next((kind for kind in other_blocking if target in kind.blocked()), None)
        if kind is not None:
            kind.release(target, error)
        out.integer(0 if kind is None else 1)
        return
    chapter17.unpark(record)
    target.blocked = False
    if error:
        target.outgoing.error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    else:
        target.outgoing.null_array()
    chapter17.woken.append(target)  # it goes on with what it sent meanwhile, before the loop sleeps
    out.integer(1)


CLIENT_HELP = [
    "GETNAME", "    Return the name of the current connection.",
    "ID", "    Return the ID of the current connection.",
    "INFO", "    Return information about the current client connection.",
    "KILL <ip:port>", "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
    "    * USER <username>", "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes).",
    "LIST [options ...]", "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type.",
    "UNPAUSE", "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
    "SETNAME <name>", "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
    "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
    "SETINFO <option> <value>", "    Set client meta attr (LIB-NAME, LIB-VER).",
    "HELP", "    Prints this help.",
]  # fmt: skip


def client_help(args: list[bytes], out: ReplyBuffer) -> None:
    write_help(out, "CLIENT", CLIENT_HELP)


# --- COMMAND GETKEYS, LIST, DOCS -----------------------------------------------------------------


def command_command(args: list[bytes], out: ReplyBuffer) -> None:
    """COMMAND as chapter 07's table answers it, plus DOCS, GETKEYS, GETKEYSANDFLAGS and LIST."""
    subcommand = args[0].lower() if args else b""
    if subcommand == b"docs":
        command_docs.write_docs(out, [name.lower() for name in args[1:]])
        return
    if subcommand in (b"getkeys", b"getkeysandflags"):
        if len(args) < 3:  # COMMAND GETKEYS command arg [arg ...]: Redis's arity -4
            out.error(wrong_arity_message(b"command|" + subcommand))
            return
        name, rest = args[1].lower(), args[2:]
        spec = COMMANDS.commands.get(name)
        full = acl.full_name(name, rest) if name in CONTAINERS else ""  # OBJECT ENCODING: object|encoding
        arity = (3 if full in key_specs.SUBCOMMAND_KEY_FLAGS else -2) if full else spec.arity if spec else 0
        if spec is None or (full and acl.subcommand_categories(full) is None):
            out.error("ERR Invalid command specified")
        elif not key_specs.has_keys(name, spec, full):
            out.error("ERR The command has no key arguments")
        elif len(rest) + 1 != arity if arity > 0 else len(rest) + 1 < -arity:
            out.error("ERR Invalid number of arguments specified for command")
        elif not (keys := key_specs.keys_with_flags(name, spec, rest, full)):
            out.error("ERR Invalid arguments specified for command")
        elif subcommand == b"getkeys":
            out.bulk_array([key for key, _ in keys])
        else:
            out.array(len(keys))
            for key, flags in keys:
                out.array(2)
                out.bulk(key)
                out.array(len(flags))
                for flag in flags:
                    out.simple(flag)
    elif subcommand == b"list":
        names = list(COMMANDS.commands)
        kind = args[2].lower() if len(args) == 4 and args[1].lower() == b"filterby" else None
        if kind == b"pattern":
            matches = compile_glob(args[3], max(map(len, names)))
            names = [name for name in names if matches(name)]
        elif kind == b"aclcat":
            names = acl.commands_in(args[3].lower().decode(errors="replace"), COMMANDS.commands)
        elif kind == b"module":
            names = []  # no modules here
        elif len(args) != 1:
            out.error("ERR syntax error")
            return
        out.bulk_array(names)
    else:
        COMMANDS.command(args, out)


# --- INFO errorstats ---------------------------------------------------------------------------
# Every error reply, counted by its code (its first word: ERR, WRONGTYPE,
# NOPERM...), as Redis's INFO errorstats; a command refused before it ran
# counts too. At most MAX_ERROR_CODES codes are kept, as Redis keeps 128:
# a client cannot grow the table with made-up codes (none can make one here,
# but a later chapter's scripts could).

MAX_ERROR_CODES = 128
error_counts: dict[str, int] = {}
total_errors = 0


def count_error(out: ReplyBuffer, reply_start: int) -> None:
    global total_errors
    if len(out) <= reply_start or out[reply_start] != ord("-"):
        return
    end = out.find(b"\r\n", reply_start)
    code = bytes(out[reply_start + 1 : end]).split(b" ", 1)[0].decode(errors="replace")
    total_errors += 1
    if code in error_counts or len(error_counts) < MAX_ERROR_CODES:
        error_counts[code] = error_counts.get(code, 0) + 1


def count_failed_call(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After every call (chapter 14's after_call): an error reply counts."""
    count_error(out, reply_start)


def count_rejection(name: bytes, out: ReplyBuffer, reply_start: int) -> None:
    """A command refused before it ran (chapter 14's on_reject)."""
    count_error(out, reply_start)


def reset_error_counts() -> None:
    global total_errors
    error_counts.clear()
    total_errors = 0


# --- RESET and wiring ----------------------------------------------------------------------


def reset_client(conn: Any) -> None:
    """RESET (chapter 18's reset_tasks): no name, no MONITOR, replies on."""
    client = clients.get(conn)
    if client is not None:
        client.name, client.reply, client.no_evict = b"", "on", False
        client.authenticated = not access.needs_password()  # as if it had just connected
        client.user = b"default"
    watching.monitors.pop(conn, None)


def largest_buffers() -> tuple[int, int]:
    """For INFO's clients section: the largest query buffer and output waiting now."""
    connections = [client.conn for client in clients.values()]
    return (max((conn.parser.buffered() for conn in connections), default=0),
            max((len(conn.outgoing) for conn in connections), default=0))  # fmt: skip


def clients_memory() -> int:
    """For INFO's memory section: what every client costs, its CLIENT LIST tot-mem."""
    return sum(CLIENT_OVERHEAD + sum(memory_of(client)) for client in clients.values())


def some_deadlines(rng: Any) -> list[int]:
    """For INFO's expired_stale_perc: the deadlines of some keys with a TTL, drawn at random."""
    drawn = (chapter14.expires.fair_random_node(rng) for _ in range(info.STALE_SAMPLE if chapter14.expires else 0))
    return [expiry.deadline for expiry in drawn if expiry is not None]


def note_output_peak(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    client = clients.get(chapter14.current_client)
    if client is not None and len(out) > client.output_peak:
        client.output_peak = len(out)


def set_acllog_max_len(value: int) -> None:
    acl.LOG_MAX = value
    while len(acl.log) > value:
        acl.log.pop()


def add_commands() -> None:
    """Chapter 20's commands, and the clients', wired into the seams of the chapters before."""
    chapter20.add_commands()
    COMMANDS.add_all({
        b"client": CommandSpec(client_command, -2, ("noscript", "loading", "stale")),
        b"monitor": CommandSpec(watching.monitor, 1, ("admin", "noscript", "loading", "stale")),
        b"slowlog": CommandSpec(watching.slowlog_command, -2, ("admin", "random", "loading", "stale")),
        b"command": CommandSpec(command_command, -1, ("random", "loading", "stale")),
        b"acl": CommandSpec(acl_command, -2, ("admin", "noscript", "loading", "stale")),
        b"auth": CommandSpec(auth, -2, ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy")),
        b"hello": CommandSpec(hello_with_auth, -1, ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy")),
    })  # fmt: skip
    pause.is_connected = clients.__contains__
    watching.client_of = clients.get
    chapter14.accept_tasks.append(client_connected)
    chapter14.close_tasks.append(client_closed)
    chapter14.idle_exemptions.append(watching.monitors.__contains__)  # a monitor only listens, as Redis spares it
    chapter18.reset_tasks.append(reset_client)
    COMMANDS.checks[:0] = [note_command, require_auth]
    after_multi_check = COMMANDS.checks.index(chapter18.check_in_transaction) + 1
    COMMANDS.checks.insert(after_multi_check, check_acl)
    acl.current_username = lambda: current().user
    acl.disconnect_user = disconnect_user
    acl.drop_stale_clients = lambda: [disconnect_user(name) for name in {c.user for c in clients.values()} - set(acl.users)]
    COMMANDS.before_call.insert(0, pause.hold_if_paused)
    COMMANDS.after_call.extend([watching.feed_monitors, watching.log_if_slow, note_output_peak, count_failed_call, drop_muted_reply])
    COMMANDS.on_reject.extend([count_rejection, drop_muted_error])
    chapter14.before_sleep_tasks.append(pause.end_pause)
    chapter14.timers.append(pause.next_pause_end_ms)
    admin = chapter14.ADMIN
    admin.add_section("modules", dict, after="cpu")  # no modules here: an empty section, as Redis without any
    admin.add_section("errorstats", lambda: {f"errorstat_{code}": f"count={count}"  # in code order, as Redis's rax
                                             for code, count in sorted(error_counts.items())}, after="modules")  # fmt: skip
    admin.extra_info.setdefault("stats", []).append(lambda: {"total_error_replies": total_errors})
    # Registered after chapter 17's count of its own parked clients, which it replaces with every kind's.
    admin.extra_info["clients"].append(lambda: {"blocked_clients": len(chapter17.parked) + len(blocked_elsewhere())})
    statistics = info.Info(admin, info.Sources(
        commands_processed=lambda: sum(spec.calls for spec in COMMANDS.commands.values()),
        largest_buffers=largest_buffers,
        clients_memory=clients_memory,
        clients_with_timeout=lambda: sum(1 for blocked in chapter17.parked.values() if blocked.deadline != math.inf)
        + sum(1 for deadline in blocked_elsewhere().values() if deadline != math.inf),
        aof_buffer=lambda: len(chapter16.append_only.aof.buffer) if chapter16.append_only.aof else 0,
        expiry_deadlines=some_deadlines,
    ))  # fmt: skip
    chapter14.cron_tasks.append(statistics.sample_if_due)
    chapter14.timers.append(statistics.next_sample_ms)
    admin.config.reset_stats.append(reset_error_counts)
    config = admin.config
    config.add("requirepass", lambda: access.requirepass.decode(errors="surrogateescape"), access.set_requirepass)
    config.add("protected-mode", lambda: "yes" if access.protected_mode else "no", access.set_protected_mode)
    config.add_integer("acllog-max-len", lambda: acl.LOG_MAX, set_acllog_max_len)
    config.add("aclfile", lambda: acl.acl_file)  # set at start-up only, as Redis's
    config.add_integer("slowlog-log-slower-than", lambda: watching.slowlog.slower_than, watching.set_slower_than, minimum=-1)
    config.add_integer("slowlog-max-len", lambda: watching.slowlog.max_len, watching.set_max_len)


def add_options(parser: Any) -> None:
    chapter19.add_options(parser)
    parser.add_argument("--slowlog-log-slower-than", type=int, default=10_000, metavar="MICROSECONDS",
                        help="log commands that take this long or longer (default: 10000; negative: off)")  # fmt: skip
    parser.add_argument("--slowlog-max-len", type=int, default=128, metavar="ENTRIES",
                        help="keep this many slow-log entries (default: 128)")  # fmt: skip
    parser.add_argument("--requirepass", default="", metavar="PASSWORD",
                        help="the default user's password: clients must AUTH (default: none)")  # fmt: skip
    parser.add_argument("--aclfile", default="", metavar="PATH",
                        help="the users, as ACL LIST lines: loaded at start-up, by ACL LOAD, written by ACL SAVE")
    parser.add_argument("--acllog-max-len", type=int, default=128, metavar="ENTRIES",
                        help="keep this many ACL LOG entries (default: 128)")  # fmt: skip
    parser.add_argument("--protected-mode", default="yes", choices=["yes", "no"],
                        help="with no password, refuse clients from other addresses than the loopback (default: yes)")


def configure(options: Any) -> None:
    chapter19.configure(options)
    watching.slowlog.slower_than, watching.slowlog.max_len = options.slowlog_log_slower_than, options.slowlog_max_len
    access.set_requirepass(options.requirepass.encode(errors="surrogateescape"))
    access.set_protected_mode(options.protected_mode.encode())
    set_acllog_max_len(options.acllog_max_len)
    if options.aclfile:
        acl.acl_file = options.aclfile
        problem = acl.load_file(options.aclfile, COMMANDS.commands)
        if problem:
            fail(f"Aborting Redis startup because of ACL errors: {problem}")


def main() -> None:
    chapter16.serve_chapter("Chapter 21: clients", add_options, add_commands, configure)


if __name__ == "__main__":
    main()
