"""Chapter 19 (beyond the book): publish/subscribe, and keyspace notifications.

Every reply so far answered a request. Pub/sub is the first data a server
pushes that nobody asked for in that request: a client SUBSCRIBEs to
channels (or PSUBSCRIBEs to glob patterns over channel names), and from
then on every PUBLISH to a matching channel is written to it as it
happens. Nothing is stored: a message reaches whoever listens at that
moment, and is gone.

* The server keeps two indexes, as Redis's server.pubsub_channels and
  pubsub_patterns: channel -> its subscribers, and pattern -> its
  subscribers, each pattern compiled once (chapter 09's matcher, bounded
  by pattern x channel length), never per message. PUBLISH looks its
  channel up in one dict and tries each pattern: what it costs grows with
  the patterns, not with the channels.
* A message is appended to each subscriber's output buffer, and the
  event loop sends it with the replies. A subscriber that does not read
  would grow that buffer without end: Redis's answer is
  `client-output-buffer-limit`, per class of client: a pubsub client is
  disconnected at once past the hard limit (32mb), or once it has stayed
  past the soft limit (8mb) for its seconds (60). The memory one
  subscriber can pin is its limit plus one message.
* In RESP2 a subscribed connection carries nothing but messages, so it may
  only (un)subscribe, PING, QUIT or RESET. RESP3 tells pushed data from
  replies (its push type, `>`): a subscribed client may run any command.
* Keyspace notifications (`notify-keyspace-events`): every write tells
  chapter 14's keyspace_listeners what it did to which key (set, del,
  expire, expired, rename_from, zadd, ...), and this chapter publishes it
  on `__keyspace@0__:<key>` and `__keyevent@0__:<event>`.

The output limits are this folder's output_limits.py. Everything else
is chapter 18's server, imported unchanged; what this chapter adds
registers into chapter 14's seams: a check before every command (the
RESP2 subscribed context), a listener after it (the output limits), the
client's close and RESET (unsubscribe), the keyspace events.

    make run-chapter 19
    redis-cli SUBSCRIBE news           # one terminal
    redis-cli PUBLISH news hello       # another
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.commands import CommandSpec, unknown_subcommand_message, write_help, wrong_arity_message  # noqa: E402
from common.chapters import load_chapter, load_chapter_module  # noqa: E402
from common.glob import compile_glob  # noqa: E402
from common.net import fail  # noqa: E402
from common.resp import RequestParser  # noqa: E402
from common.resp3 import ReplyBuffer  # noqa: E402

chapter18 = load_chapter(18)  # the server this chapter extends: transactions, RESET
chapter16 = chapter18.chapter16  # its start-up and persistence
chapter14 = chapter18.chapter14  # the clients, the command table, the keyspace events
COMMANDS = chapter14.COMMANDS
output_limits = load_chapter_module(19, "output_limits")  # what a client that does not read may cost

# Roughly what Python spends on one subscription (the entries in the
# client's dict and the channel's, a compiled pattern), beyond the name's
# bytes: a client's subscriptions count against client-query-buffer-limit,
# as chapter 18's queued commands do, so that one client cannot fill the memory.
SUBSCRIPTION_COST = 250


# --- who listens to what ----------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Subscriber:
    """A client's subscriptions (Redis's c->pubsub_channels, pubsub_patterns
    and pubsubshard_channels, and its CLIENT_PUBSUB flag: a client is in
    `subscribers` while it has at least one)."""

    client: Any  # chapter 14's Connection
    channels: dict[bytes, None] = field(default_factory=dict)  # dicts as ordered sets
    patterns: dict[bytes, None] = field(default_factory=dict)
    shard_channels: dict[bytes, None] = field(default_factory=dict)
    memory: int = 0  # what its subscriptions cost, roughly, in bytes

    def count(self, shard: bool) -> int:
        """The count a (un)subscribe confirmation reports: channels and
        patterns together, shard channels apart (as Redis)."""
        return len(self.shard_channels) if shard else len(self.channels) + len(self.patterns)


@dataclass(eq=False, slots=True)
class Listeners:
    """Who listens to one channel or pattern, in subscription order; a
    pattern's matcher, compiled once, when its first subscriber came."""

    matches: Callable[[bytes], bool] | None = None
    subscribers: dict[Subscriber, None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Kind:
    """Channels, patterns or shard channels (Redis's pubsubtype): the
    server's index of them, the Subscriber field where a client keeps its
    own, and the names of their confirmations."""

    index: dict[bytes, Listeners]  # name -> its listeners (Redis's server.pubsub_channels, ...)
    field: str
    subscribed: bytes
    unsubscribed: bytes
    shard: bool = False  # counted apart from channels and patterns
    patterns: bool = False  # names are patterns: compiled


CHANNELS = Kind({}, "channels", b"subscribe", b"unsubscribe")
PATTERNS = Kind({}, "patterns", b"psubscribe", b"punsubscribe", patterns=True)
SHARD_CHANNELS = Kind({}, "shard_channels", b"ssubscribe", b"sunsubscribe", shard=True)
channels, patterns, shard_channels = CHANNELS.index, PATTERNS.index, SHARD_CHANNELS.index
subscribers: dict[Any, Subscriber] = {}  # client -> its subscriptions, while it has any


def leave_if_done(state: Subscriber) -> None:
    """A client with no subscription left is an ordinary client again."""
    if not (state.channels or state.patterns or state.shard_channels):
        subscribers.pop(state.client, None)
        output_limits.forget(state.client)


# --- SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, and the shard forms -------------------


def confirm(out: ReplyBuffer, kind: bytes, name: bytes | None, count: int) -> None:
    """A (un)subscribe confirmation: [kind, channel or pattern, count], pushed."""
    out.push(3)
    out.bulk(kind)
    if name is None:  # UNSUBSCRIBE with nothing to leave still answers
        out.null()
    else:
        out.bulk(name)
    out.integer(count)


def subscribe_to(kind: Kind, args: list[bytes], out: ReplyBuffer) -> None:
    conn = chapter14.current_client
    state = subscribers.get(conn) or Subscriber(conn)
    own = getattr(state, kind.field)
    for name in args:
        if name not in own:
            cost = SUBSCRIPTION_COST + len(name)
            if state.memory + cost > RequestParser.max_query_buffer:
                out.error("ERR too many subscriptions for this client: past client-query-buffer-limit")
                break
            state.memory += cost
            own[name] = None
            listeners = kind.index.get(name)
            if listeners is None:
                # A pattern is compiled for every channel to come: no channel
                # is longer than the longest bulk string a client may send.
                matches = compile_glob(name, RequestParser.max_bulk_length) if kind.patterns else None
                listeners = kind.index[name] = Listeners(matches)
            listeners.subscribers[state] = None
            subscribers[conn] = state
        confirm(out, kind.subscribed, name, state.count(kind.shard))


def leave(kind: Kind, state: Subscriber | None, args: list[bytes], out: ReplyBuffer | None) -> None:
    """Leave the channels or patterns named, or all of them with no name;
    confirm each unless `out` is None."""
    own = getattr(state, kind.field) if state is not None else {}
    names = args or list(own)
    for name in names:
        if name in own:
            del own[name]
            state.memory -= SUBSCRIPTION_COST + len(name)
            listeners = kind.index[name]
            del listeners.subscribers[state]
            if not listeners.subscribers:
                del kind.index[name]  # so that a million channels once used cost nothing now
        if out is not None:
            confirm(out, kind.unsubscribed, name, state.count(kind.shard) if state else 0)
    if not names and out is not None:
        confirm(out, kind.unsubscribed, None, state.count(kind.shard) if state else 0)
    if state is not None:
        leave_if_done(state)


def subscribe(args: list[bytes], out: ReplyBuffer) -> None:
    subscribe_to(CHANNELS, args, out)


def psubscribe(args: list[bytes], out: ReplyBuffer) -> None:
    subscribe_to(PATTERNS, args, out)


def ssubscribe(args: list[bytes], out: ReplyBuffer) -> None:
    subscribe_to(SHARD_CHANNELS, args, out)


def unsubscribe(args: list[bytes], out: ReplyBuffer) -> None:
    leave(CHANNELS, subscribers.get(chapter14.current_client), args, out)


def punsubscribe(args: list[bytes], out: ReplyBuffer) -> None:
    leave(PATTERNS, subscribers.get(chapter14.current_client), args, out)


def sunsubscribe(args: list[bytes], out: ReplyBuffer) -> None:
    leave(SHARD_CHANNELS, subscribers.get(chapter14.current_client), args, out)


def forget_client(conn: Any) -> None:
    """The client is closed or RESET (chapter 14's close_tasks, chapter 18's
    reset_tasks): it leaves everything, unconfirmed."""
    state = subscribers.get(conn)
    for kind in (CHANNELS, PATTERNS, SHARD_CHANNELS):
        leave(kind, state, [], None)
    output_limits.forget(conn)


# --- PUBLISH --------------------------------------------------------------------------------


def publish_message(channel: bytes, message: bytes, shard: bool = False) -> int:
    """Write the message to every subscriber of `channel`, then to every
    subscriber of a pattern it matches (not for shard channels); return
    how many receive it (Redis's pubsubPublishMessage)."""
    receivers = 0
    listeners = (shard_channels if shard else channels).get(channel)
    if listeners is not None:
        delivery = Delivery((b"smessage" if shard else b"message", channel, message))
        for state in listeners.subscribers:
            deliver(state, delivery)
        receivers += len(listeners.subscribers)
    if not shard:
        for pattern, listeners in patterns.items():
            if listeners.matches(channel):
                delivery = Delivery((b"pmessage", pattern, channel, message))
                for state in listeners.subscribers:
                    deliver(state, delivery)
                receivers += len(listeners.subscribers)
    return receivers


class Delivery:
    """One message for many subscribers: encoded once per protocol, then
    copied into each subscriber's output buffer."""

    __slots__ = ("parts", "encoded")

    def __init__(self, parts: tuple[bytes, ...]) -> None:
        self.parts = parts
        self.encoded: dict[int, bytes] = {}  # protocol -> the message's bytes in it

    def encoding(self, protocol: int) -> bytes:
        data = self.encoded.get(protocol)
        if data is None:
            buffer = ReplyBuffer()
            buffer.protocol = protocol
            buffer.push(len(self.parts))
            for part in self.parts:
                buffer.bulk(part)
            data = self.encoded[protocol] = bytes(buffer)
        return data


def deliver(state: Subscriber, delivery: Delivery) -> None:
    """Append a message to the subscriber's output, in its protocol; the
    event loop sends it with the replies (chapter 14's clients_pending_write)."""
    conn = state.client
    if conn.closing:
        return  # being disconnected (past its output limit): nothing more for it
    out = conn.outgoing
    out += delivery.encoding(out.protocol)
    chapter14.clients_pending_write[id(conn)] = conn
    output_limits.enforce(conn, "pubsub")


def publish(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(publish_message(args[0], args[1]))


def spublish(args: list[bytes], out: ReplyBuffer) -> None:
    out.integer(publish_message(args[0], args[1], shard=True))


# --- PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB ------------------------

PUBSUB_HELP = [
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


def pubsub(args: list[bytes], out: ReplyBuffer) -> None:
    subcommand = args[0].lower()
    if subcommand in (b"channels", b"shardchannels") and len(args) <= 2:
        index = channels if subcommand == b"channels" else shard_channels
        names = list(index)
        if len(args) == 2:
            matches = compile_glob(args[1], max(map(len, names), default=0))
            names = [name for name in names if matches(name)]
        out.bulk_array(names)
    elif subcommand in (b"numsub", b"shardnumsub"):
        index = channels if subcommand == b"numsub" else shard_channels
        out.array(2 * (len(args) - 1))
        for channel in args[1:]:
            out.bulk(channel)
            listeners = index.get(channel)
            out.integer(0 if listeners is None else len(listeners.subscribers))
    elif subcommand == b"numpat" and len(args) == 1:
        out.integer(len(patterns))
    elif subcommand == b"help" and len(args) == 1:
        write_help(out, "PUBSUB", PUBSUB_HELP)
    elif subcommand in (b"numpat", b"help"):
        out.error(wrong_arity_message(b"pubsub|" + subcommand))
    elif subcommand in (b"channels", b"shardchannels"):  # their arity is open: the command itself refuses
        name = args[0].decode(errors="replace")
        out.error(f"ERR unknown subcommand or wrong number of arguments for '{name}'. Try PUBSUB HELP.")
    else:
        out.error(unknown_subcommand_message(args[0], "PUBSUB"))


# --- RESP2's subscribed context ------------------------------------------------------------

ALLOWED_WHEN_SUBSCRIBED = {b"subscribe", b"ssubscribe", b"psubscribe", b"unsubscribe", b"sunsubscribe",
                           b"punsubscribe", b"ping", b"quit", b"reset"}  # fmt: skip
# Commands with subcommands: Redis's error names them as container|subcommand.
CONTAINERS = {b"config", b"client", b"command", b"object", b"pubsub"}


def check_subscribed_context(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
    """Before every command (chapter 14's checks): a RESP2 client with
    subscriptions may only run what ALLOWED_WHEN_SUBSCRIBED lists."""
    if not subscribers or out.protocol != 2 or name in ALLOWED_WHEN_SUBSCRIBED:
        return False
    if chapter14.current_client not in subscribers:
        return False
    full_name = (name + b"|" + args[0].lower() if name in CONTAINERS and args else name).decode(errors="replace")
    out.error(f"ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
              "are allowed in this context")  # fmt: skip
    return True


def ping(args: list[bytes], out: ReplyBuffer) -> None:
    """PING [message]: in RESP2's subscribed context, a message-shaped
    ["pong", message], the only shape the client reads there."""
    if len(args) <= 1 and out.protocol == 2 and chapter14.current_client in subscribers:
        out.array(2)
        out.bulk(b"pong")
        out.bulk(args[0] if args else b"")
    else:
        chapter14.ping(args, out)


# --- client-output-buffer-limit: output_limits.py ------------------------------------------


# A server built on this one may have clients of another class (replicas:
# "slave"): asked first, each answers a class or None.
other_client_classes: list[Callable[[Any], str | None]] = []


def client_class(conn: Any) -> str:
    """Which of client-output-buffer-limit's classes `conn` is in (Redis's getClientType)."""
    for classify in other_client_classes:
        found = classify(conn)
        if found is not None:
            return found
    return "pubsub" if conn in subscribers else "normal"


def limit_own_output(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer, reply_start: int) -> None:
    """After every command (chapter 14's after_call): its client's replies
    count too, if its class has a limit."""
    conn = chapter14.current_client
    if conn is not None and output_limits.limited(client_class(conn)):
        output_limits.enforce(conn, client_class(conn))


# --- keyspace notifications -----------------------------------------------------------------

# notify-keyspace-events: which classes of events are published, and where:
# K on __keyspace@0__:<key>, E on __keyevent@0__:<event>. A is every class
# but n (new keys) and m (key misses), as Redis.
EVENT_CLASSES = "g$lshzxetdn"
ALL_CLASSES = set("g$lshzxetd")
notify_classes: set[str] = set()  # empty: off, Redis's default


def parse_event_classes(text: bytes) -> set[str] | str:
    """The classes in a notify-keyspace-events value, or why it is refused."""
    classes = set()
    for character in text.decode(errors="replace"):
        if character == "A":
            classes |= ALL_CLASSES
        elif character in EVENT_CLASSES or character in "KE":
            classes.add(character)
        elif character == "m":
            # Redis's key-miss events come from every read of a missing key;
            # this server does not emit them, so it does not accept them.
            return "the key miss class (m) is not supported by this server"
        else:
            return "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
    return classes


def event_classes_text() -> str:
    """Redis's spelling of the setting: A for all, then K, E (n is dropped with A, as Redis does)."""
    text = "A" if ALL_CLASSES <= notify_classes else "".join(c for c in EVENT_CLASSES if c in notify_classes)
    return text + "".join(c for c in "KE" if c in notify_classes)


def set_event_classes(text: bytes) -> str | None:
    global notify_classes
    classes = parse_event_classes(text)
    if isinstance(classes, str):
        return classes
    notify_classes = classes
    return None


def publish_keyspace_event(kind: str, event: str, key: bytes) -> None:
    """What a write did (chapter 14's keyspace_listeners), published if its
    class is on (Redis's notifyKeyspaceEvent). Cheap while nobody listens."""
    if kind not in notify_classes or not (channels or patterns):
        return
    name = event.encode()
    if "K" in notify_classes:
        publish_message(b"__keyspace@0__:" + key, name)
    if "E" in notify_classes:
        publish_message(b"__keyevent@0__:" + name, key)


# --- wiring ---------------------------------------------------------------------------------


def add_commands() -> None:
    """Chapter 18's commands and pub/sub's, wired into chapter 14's seams."""
    chapter18.add_commands()
    pubsub_flags = ("pubsub", "noscript", "loading", "stale")
    COMMANDS.add_all({
        b"subscribe": CommandSpec(subscribe, -2, pubsub_flags),
        b"unsubscribe": CommandSpec(unsubscribe, -1, pubsub_flags),
        b"psubscribe": CommandSpec(psubscribe, -2, pubsub_flags),
        b"punsubscribe": CommandSpec(punsubscribe, -1, pubsub_flags),
        b"ssubscribe": CommandSpec(ssubscribe, -2, pubsub_flags, 1, -1, 1),
        b"sunsubscribe": CommandSpec(sunsubscribe, -1, pubsub_flags, 1, -1, 1),
        b"publish": CommandSpec(publish, 3, (*pubsub_flags, "fast", "may_replicate")),
        b"spublish": CommandSpec(spublish, 3, (*pubsub_flags, "fast", "may_replicate"), 1, 1, 1),
        b"pubsub": CommandSpec(pubsub, -2, ()),
        b"ping": CommandSpec(ping, -1, ("fast",)),
    })
    COMMANDS.checks.append(check_subscribed_context)
    COMMANDS.after_call.append(limit_own_output)
    chapter14.close_tasks.append(forget_client)
    chapter14.idle_exemptions.append(subscribers.__contains__)  # a subscriber waits for messages: never idle, as Redis
    chapter18.reset_tasks.append(forget_client)
    chapter14.keyspace_listeners.append(publish_keyspace_event)
    config = chapter14.ADMIN.config
    config.add("notify-keyspace-events", event_classes_text, set_event_classes)
    config.add("client-output-buffer-limit", output_limits.limits_text, output_limits.set_limits)
    chapter14.ADMIN.extra_info.setdefault("stats", []).append(lambda: {
        "pubsub_channels": len(channels),
        "pubsub_patterns": len(patterns),
        "pubsubshard_channels": len(shard_channels),
        "client_output_buffer_limit_disconnections": output_limits.disconnections,
    })  # fmt: skip


def add_options(parser: argparse.ArgumentParser) -> None:
    chapter16.add_options(parser)
    parser.add_argument("--notify-keyspace-events", default="", metavar="CLASSES",
                        help='keyspace events to publish, as Redis: e.g. "KEA" (default: none)')  # fmt: skip
    parser.add_argument("--client-output-buffer-limit", action="append", default=[], metavar='"CLASS HARD SOFT SECONDS"',
                        help="disconnect a client whose unsent output passes HARD bytes, or stays past SOFT for "
                             "SECONDS (default: normal 0 0 0, pubsub 32mb 8mb 60; may be repeated)")  # fmt: skip


def configure(options: argparse.Namespace) -> None:
    for text, setter in [(options.notify_keyspace_events, set_event_classes),
                         *((limit, output_limits.set_limits) for limit in options.client_output_buffer_limit)]:  # fmt: skip
        problem = setter(text.encode())
        if problem is not None:
            fail(f"{text!r}: {problem}")


def main() -> None:
    chapter16.serve_chapter("Chapter 19: pub/sub and keyspace notifications", add_options, add_commands, configure)


if __name__ == "__main__":
    main()
