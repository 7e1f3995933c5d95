"""INFO, CONFIG and SELECT: the server-management commands that monitoring
tools, redis-cli, redis-benchmark and Redis's own test harness send.

Redis-compatibility glue used from chapter 07 on; no chapter teaches it.
Every figure INFO reports is measured (memory is the process's resident
set, from the kernel), and CONFIG knows only the settings the server
really has (common/config.py). A server has one database, so SELECT 0 is
the only index that works, as in a Redis started with `databases 1`.
"""

from __future__ import annotations

import os
import platform
import resource
import secrets
import sys
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass

from common.commands import (
    REDIS_VERSION,
    CommandSpec,
    CommandTable,
    unknown_subcommand_message,
    write_help,
    wrong_arity_message,
)
from common.config import Config
from common.net import Acceptor
from common.resp import RequestParser, parse_integer, write_array_header, write_bulk, write_error, write_simple

# The Redis version whose replies the chapters reproduce (HELLO, INFO).
DEFAULT_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace")
ALL_SECTIONS = (*DEFAULT_SECTIONS, "commandstats")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Traffic:
    """What an event loop that counts (chapter 14 on) tells INFO's stats:
    bytes and calls on the sockets, key lookups by commands that only read
    (Redis counts those as keyspace hits and misses), values freed by the
    worker thread, keys expired (lazily or by the active cycles, whose cost
    is timed), and the loop's own iterations."""

    net_input_bytes: int = 0
    net_output_bytes: int = 0
    reads_processed: int = 0
    writes_processed: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    lazyfreed_objects: int = 0
    expired_keys: int = 0
    expire_cycles_capped: int = 0  # active expiry cycles that stopped with due keys left
    expire_cycle_ns: int = 0  # time spent in active expiry
    eventloop_cycles: int = 0


class ServerAdmin:
    """The state INFO and CONFIG report on, and those commands.

    A chapter creates one next to its command table, which it adds INFO,
    CONFIG and SELECT to, and calls `serve` once its event loop has its
    acceptor and its table of clients. `keys` and `expires` count the keys
    and the keys with a TTL (None: a server without TTLs).
    """

    def __init__(self, commands: CommandTable, keys: Callable[[], int],
                 expires: Callable[[], int] | None = None) -> None:  # fmt: skip
        self.commands = commands
        self.count_keys = keys
        self.count_expires = expires or (lambda: 0)
        self.config = Config()
        self.extra_info: dict[str, list[Callable[[], dict[str, object]]]] = {}  # section -> more fields
        # Sections a server built on this one adds: name -> its fields, shown
        # by default (in `default_sections`' order) or only when asked for.
        self.default_sections = list(DEFAULT_SECTIONS)
        self.all_sections = list(ALL_SECTIONS)
        self.more_sections: dict[str, Callable[[], dict[str, object]]] = {}
        # Run on each section's fields last (section name, fields -> fields): one may complete or reorder them.
        self.section_finishers: list[Callable[[str, dict[str, object]], dict[str, object]]] = []
        self.started = time.time()
        self.run_id = secrets.token_hex(20)
        self.acceptor: Acceptor | None = None
        self.multiplexing_api = "poll"
        self.clients: Sized = ()
        self.port = 0
        # Counted by the loops that count (chapters 14 on): INFO shows them only then.
        self.traffic = Traffic()
        self.counting = False
        commands.add(b"info", CommandSpec(self.info, -1, ("loading", "stale")))
        commands.add(b"config", CommandSpec(self.config_command, -2, ("admin", "noscript", "loading", "stale")))
        commands.add(b"select", CommandSpec(self.select, 2, ("loading", "stale", "fast")))

    def serve(self, acceptor: Acceptor, clients: Sized, counting: bool = False, api: str = "poll") -> None:
        """Start reporting on a running event loop; registers the settings every event-loop server has.
        With `counting`, the loop keeps `traffic` up to date; `api` is what it waits in."""
        self.acceptor, self.clients, self.multiplexing_api = acceptor, clients, api
        self.counting = counting
        host, port = acceptor.listener.getsockname()[:2]
        self.port = port
        self.config.add("port", lambda: port)
        self.config.add("bind", lambda: host)
        self.config.add_integer("maxclients", lambda: acceptor.max_clients,
                                lambda value: setattr(acceptor, "max_clients", value), minimum=1, maximum=2**32 - 1)  # fmt: skip
        self.config.add_integer("client-query-buffer-limit", lambda: RequestParser.max_query_buffer,
                                lambda value: setattr(RequestParser, "max_query_buffer", value),
                                minimum=1024 * 1024, memory=True)  # fmt: skip
        self.config.add_integer("proto-max-bulk-len", lambda: RequestParser.max_bulk_length,
                                lambda value: setattr(RequestParser, "max_bulk_length", value),
                                minimum=1024 * 1024, memory=True)  # fmt: skip
        # No persistence (until chapter 16, which registers its own): reported as
        # Redis reports it when off, so that redis-benchmark and monitoring tools
        # read the truth; not settable.
        if b"save" not in self.config.settings:
            self.config.add("save", lambda: "")
            self.config.add("appendonly", lambda: "no")
        self.config.reset_stats.append(self.commands.reset_stats)
        self.config.reset_stats.append(self.reset_traffic)

    def reset_traffic(self) -> None:
        """CONFIG RESETSTAT: every counter but the loop's iterations starts again."""
        self.traffic = Traffic(eventloop_cycles=self.traffic.eventloop_cycles)

    # --- SELECT ------------------------------------------------------------------

    def select(self, args: list[bytes], out: bytearray) -> None:
        index = parse_integer(args[0])
        if index is None:
            write_error(out, "ERR value is not an integer or out of range")
        elif index != 0:
            write_error(out, "ERR DB index is out of range")
        else:
            write_simple(out, "OK")

    # --- CONFIG ------------------------------------------------------------------

    def config_command(self, args: list[bytes], out: bytearray) -> None:
        """CONFIG GET pattern... | SET name value... | RESETSTAT | REWRITE | HELP"""
        subcommand = args[0].lower()
        if subcommand == b"get" and len(args) >= 2:
            pairs = self.config.get(args[1:])
            if getattr(out, "protocol", 2) == 3:
                out.map(len(pairs))
            else:
                write_array_header(out, 2 * len(pairs))
            for name, value in pairs:
                write_bulk(out, name)
                write_bulk(out, value)
        elif subcommand == b"set" and len(args) >= 3 and len(args) % 2 == 1:
            self.config_set(args[1:], out)
        elif subcommand == b"resetstat" and len(args) == 1:
            for reset in self.config.reset_stats:
                reset()
            if self.acceptor is not None:
                self.acceptor.accepted = self.acceptor.refused = 0
            write_simple(out, "OK")
        elif subcommand == b"rewrite" and len(args) == 1:
            write_error(out, "ERR The server is running without a config file")
        elif subcommand == b"help" and len(args) == 1:
            write_help(out, "CONFIG", CONFIG_HELP)
        elif subcommand in (b"get", b"set", b"resetstat", b"rewrite", b"help"):
            write_error(out, wrong_arity_message(b"config|" + subcommand))
        else:
            write_error(out, unknown_subcommand_message(args[0], "CONFIG"))

    def config_set(self, args: list[bytes], out: bytearray) -> None:
        """Every name is checked before anything changes, as in Redis 7."""
        changes = []
        for name, value in zip(args[0::2], args[1::2]):
            name = name.lower()
            setting = self.config.settings.get(name)
            text = name.decode(errors="surrogateescape")
            if setting is None:
                write_error(out, f"ERR Unknown option or number of arguments for CONFIG SET - '{text}'")
                return
            if any(name == earlier for earlier, _, _ in changes):
                write_error(out, f"ERR CONFIG SET failed (possibly related to argument '{text}') - duplicate parameter")
                return
            changes.append((name, setting, value))
        previous = [(setting, setting.get()) for _, setting, _ in changes]
        for name, setting, value in changes:
            problem = "can't set immutable config" if setting.set is None else setting.set(value)
            if problem is not None:
                for earlier, old_value in previous:  # undo what was already changed
                    if earlier.set is not None:
                        earlier.set(old_value)
                text = name.decode(errors="surrogateescape")
                write_error(out, f"ERR CONFIG SET failed (possibly related to argument '{text}') - {problem}")
                return
        write_simple(out, "OK")

    # --- INFO --------------------------------------------------------------------

    def info(self, args: list[bytes], out: bytearray) -> None:
        """INFO [section ...]: "default", "all", "everything" or section names, in any case."""
        wanted: list[str] = []
        for arg in args or [b"default"]:
            name = arg.lower().decode(errors="replace")
            every = self.all_sections
            names = {"default": self.default_sections, "all": every, "everything": every}.get(name, (name,))
            wanted += [section for section in names if section not in wanted]
        # Each section ends with CRLF, and a blank line separates them, as in Redis.
        data = "\r\n".join(self.section(name) for name in self.all_sections if name in wanted).encode()
        if getattr(out, "protocol", 2) == 3:
            out += b"=%d\r\ntxt:%s\r\n" % (len(data) + 4, data)  # a verbatim string, as Redis 7
        else:
            write_bulk(out, data)

    def add_section(self, name: str, fields: Callable[[], dict[str, object]], after: str) -> None:
        """A section a server adds to INFO's default ones, after `after` (Redis's order)."""
        self.more_sections[name] = fields
        for sections in (self.default_sections, self.all_sections):
            sections.insert(sections.index(after) + 1, name)

    def section(self, name: str) -> str:
        fields = self.more_sections[name]() if name in self.more_sections else getattr(self, "info_" + name)()
        for more in self.extra_info.get(name, []):
            fields.update(more())
        for finish in self.section_finishers:
            fields = finish(name, fields)
        title = "CPU" if name == "cpu" else name.capitalize()  # Redis's spelling: tools split INFO by it
        return f"# {title}\r\n" + "".join(f"{key}:{value}\r\n" for key, value in fields.items())

    def info_server(self) -> dict[str, object]:
        uptime = int(time.time() - self.started)
        return {
            "redis_version": REDIS_VERSION,
            "redis_mode": "standalone",
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "arch_bits": 64 if sys.maxsize > 2**32 else 32,
            "multiplexing_api": self.multiplexing_api,
            "python_version": platform.python_version(),
            "process_id": os.getpid(),
            "run_id": self.run_id,
            "tcp_port": self.port,
            "server_time_usec": time.time_ns() // 1000,
            "uptime_in_seconds": uptime,
            "uptime_in_days": uptime // 86400,
            "executable": os.path.abspath(sys.argv[0]),
            "config_file": "",
        }

    def info_clients(self) -> dict[str, object]:
        return {
            "connected_clients": len(self.clients),
            "maxclients": self.acceptor.max_clients if self.acceptor else 0,
            "blocked_clients": 0,
        }

    def info_memory(self) -> dict[str, object]:
        with open("/proc/self/statm") as statm:  # pages: total, resident, ...
            resident = int(statm.read().split()[1]) * PAGE_SIZE
        # The kernel's peak (kB on Linux) is updated lazily: it can lag the resident size just read.
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, resident)
        # Redis's used_memory is what its allocator handed out; Python's
        # allocator does not say, so the resident set stands for it.
        return {
            "used_memory": resident,
            "used_memory_human": human_bytes(resident),
            "used_memory_rss": resident,
            "used_memory_rss_human": human_bytes(resident),
            "used_memory_peak": peak,
            "used_memory_peak_human": human_bytes(peak),
            "lazyfree_pending_objects": 0,
            **({"lazyfreed_objects": self.traffic.lazyfreed_objects} if self.counting else {}),
        }

    def info_stats(self) -> dict[str, object]:
        stats: dict[str, object] = {
            "total_connections_received": (self.acceptor.accepted if self.acceptor else 0),
            "total_commands_processed": sum(spec.calls for spec in self.commands.commands.values()),
            "rejected_connections": self.acceptor.refused if self.acceptor else 0,
        }
        if self.counting:
            traffic = self.traffic
            stats |= {
                "total_net_input_bytes": traffic.net_input_bytes,
                "total_net_output_bytes": traffic.net_output_bytes,
                "expired_keys": traffic.expired_keys,
                "expired_time_cap_reached_count": traffic.expire_cycles_capped,
                "expire_cycle_cpu_milliseconds": traffic.expire_cycle_ns // 1_000_000,
                "keyspace_hits": traffic.keyspace_hits,
                "keyspace_misses": traffic.keyspace_misses,
                "total_reads_processed": traffic.reads_processed,
                "total_writes_processed": traffic.writes_processed,
                "eventloop_cycles": traffic.eventloop_cycles,  # Redis 7.2's name
            }
        return stats

    def info_persistence(self) -> dict[str, object]:
        """Nothing persists (chapter 16 adds its fields); what Redis's tools wait on is idle."""
        return {"loading": 0, "async_loading": 0, "rdb_bgsave_in_progress": 0, "aof_enabled": 0,
                "aof_rewrite_in_progress": 0}  # fmt: skip

    def info_replication(self) -> dict[str, object]:
        return {"role": "master", "connected_slaves": 0, "master_repl_offset": 0}

    def info_cpu(self) -> dict[str, object]:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "used_cpu_sys": f"{own.ru_stime:.6f}",
            "used_cpu_user": f"{own.ru_utime:.6f}",
            "used_cpu_sys_children": f"{children.ru_stime:.6f}",
            "used_cpu_user_children": f"{children.ru_utime:.6f}",
        }

    def info_cluster(self) -> dict[str, object]:
        return {"cluster_enabled": 0}  # clients read it to choose between a plain and a cluster client

    def info_commandstats(self) -> dict[str, object]:
        fields = {}
        for name, spec in self.commands.commands.items():
            if spec.calls or spec.rejected_calls:
                usec = spec.nanoseconds // 1000
                per_call = usec / spec.calls if spec.calls else 0
                fields["cmdstat_" + name.decode()] = (
                    f"calls={spec.calls},usec={usec},usec_per_call={per_call:.2f},"
                    f"rejected_calls={spec.rejected_calls},failed_calls={spec.failed_calls}"
                )
        return fields

    def info_keyspace(self) -> dict[str, object]:
        keys = self.count_keys()
        return {"db0": f"keys={keys},expires={self.count_expires()}"} if keys else {}


CONFIG_HELP = [
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
]


def human_bytes(count: int) -> str:
    """Redis's bytesToHuman: 1.50M, 20.00K, 512B."""
    for unit, size in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return f"{count}B"
