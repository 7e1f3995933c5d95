"""INFO as Redis 7.0 prints it: every field of its default sections, in its order.

Part of chapter 21. Monitoring tools read INFO by field name, and some by
position in a section; the chapters before each added the fields they
could fill, in the order they came. Here every section is completed to
Redis 7.0.15's list (`FIELDS`) and put in its order; fields of this
project that Redis does not print (python_version, eventloop_cycles, ...)
follow Redis's.

A field's value is measured, or says what Redis says when the thing it
counts does not exist: no Lua (used_memory_lua:0), no replicas yet
(connected_slaves:0, repl_backlog_active:0), no cluster, no eviction
(maxmemory:0, which means no limit, and maxmemory_policy:noeviction), no
I/O threads, no CLIENT TRACKING, no active defragmentation. Memory is
the process's resident set, as chapter 07's INFO says: Python's allocator
does not report what it handed out, so the allocator figures are Redis's
own for an allocator that does not either (libc): allocated = active =
resident, ratios 1.00.

Rates (instantaneous_ops_per_sec, the kbps fields) are Redis's: a sample
every 100 ms of how much the counter grew, averaged over the last 16
samples; the timer that takes them runs at `HZ`, as Redis's serverCron.
"""

from __future__ import annotations

import hashlib
import random
import re
import resource
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.admin import ServerAdmin, human_bytes

FIELDS = {
    "server": """redis_version redis_git_sha1 redis_git_dirty redis_build_id redis_mode os arch_bits monotonic_clock
        multiplexing_api atomicvar_api gcc_version process_id process_supervised run_id tcp_port server_time_usec
        uptime_in_seconds uptime_in_days hz configured_hz lru_clock executable config_file io_threads_active""",
    "clients": """connected_clients cluster_connections maxclients client_recent_max_input_buffer
        client_recent_max_output_buffer blocked_clients tracking_clients clients_in_timeout_table""",
    "memory": """used_memory used_memory_human used_memory_rss used_memory_rss_human used_memory_peak
        used_memory_peak_human used_memory_peak_perc used_memory_overhead used_memory_startup used_memory_dataset
        used_memory_dataset_perc allocator_allocated allocator_active allocator_resident total_system_memory
        total_system_memory_human used_memory_lua used_memory_vm_eval used_memory_lua_human used_memory_scripts_eval
        number_of_cached_scripts number_of_functions number_of_libraries used_memory_vm_functions
        used_memory_vm_total used_memory_vm_total_human used_memory_functions used_memory_scripts
        used_memory_scripts_human maxmemory maxmemory_human maxmemory_policy allocator_frag_ratio
        allocator_frag_bytes allocator_rss_ratio allocator_rss_bytes rss_overhead_ratio rss_overhead_bytes
        mem_fragmentation_ratio mem_fragmentation_bytes mem_not_counted_for_evict mem_replication_backlog
        mem_total_replication_buffers mem_clients_slaves mem_clients_normal mem_cluster_links mem_aof_buffer
        mem_allocator active_defrag_running lazyfree_pending_objects lazyfreed_objects""",
    "persistence": """loading async_loading current_cow_peak current_cow_size current_cow_size_age current_fork_perc
        current_save_keys_processed current_save_keys_total rdb_changes_since_last_save rdb_bgsave_in_progress
        rdb_last_save_time rdb_last_bgsave_status rdb_last_bgsave_time_sec rdb_current_bgsave_time_sec rdb_saves
        rdb_last_cow_size rdb_last_load_keys_expired rdb_last_load_keys_loaded aof_enabled aof_rewrite_in_progress
        aof_rewrite_scheduled aof_last_rewrite_time_sec aof_current_rewrite_time_sec aof_last_bgrewrite_status
        aof_rewrites aof_rewrites_consecutive_failures aof_last_write_status aof_last_cow_size
        module_fork_in_progress module_fork_last_cow_size""",
    "stats": """total_connections_received total_commands_processed instantaneous_ops_per_sec total_net_input_bytes
        total_net_output_bytes total_net_repl_input_bytes total_net_repl_output_bytes instantaneous_input_kbps
        instantaneous_output_kbps instantaneous_input_repl_kbps instantaneous_output_repl_kbps rejected_connections
        sync_full sync_partial_ok sync_partial_err expired_keys expired_stale_perc expired_time_cap_reached_count
        expire_cycle_cpu_milliseconds evicted_keys evicted_clients total_eviction_exceeded_time
        current_eviction_exceeded_time keyspace_hits keyspace_misses pubsub_channels pubsub_patterns
        pubsubshard_channels latest_fork_usec total_forks migrate_cached_sockets slave_expires_tracked_keys
        active_defrag_hits active_defrag_misses active_defrag_key_hits active_defrag_key_misses
        total_active_defrag_time current_active_defrag_time tracking_total_keys tracking_total_items
        tracking_total_prefixes unexpected_error_replies total_error_replies dump_payload_sanitizations
        total_reads_processed total_writes_processed io_threaded_reads_processed io_threaded_writes_processed
        reply_buffer_shrinks reply_buffer_expands""",
    "replication": """role connected_slaves master_failover_state master_replid master_replid2 master_repl_offset
        second_repl_offset repl_backlog_active repl_backlog_size repl_backlog_first_byte_offset repl_backlog_histlen""",
    "cpu": """used_cpu_sys used_cpu_user used_cpu_sys_children used_cpu_user_children used_cpu_sys_main_thread
        used_cpu_user_main_thread""",
}
FIELDS_IN_ORDER = {section: names.split() for section, names in FIELDS.items()}
# Fields Redis prints only when they apply, and the field they follow: a
# replica's link to its master after role; a master's replicas (slave0,
# slave1...) and min-replicas' count after connected_slaves.
SOMETIMES = {"replication": {
    "role": re.compile(r"master_.*|slave_.*|replica_announced"),
    "connected_slaves": re.compile(r"min_slaves_good_slaves|slave\d+"),
}}  # fmt: skip

# What Redis prints for what does not exist here, field by field.
ABSENT: dict[str, object] = {
    "redis_git_sha1": "00000000", "redis_git_dirty": 0, "process_supervised": "no",
    "gcc_version": "0.0.0",  # Redis's text when not built by GCC
    "atomicvar_api": "python-gil",  # Redis names its atomic operations; here the GIL makes each step atomic
    "io_threads_active": 0, "cluster_connections": 0, "tracking_clients": 0,
    **dict.fromkeys("""used_memory_lua used_memory_vm_eval used_memory_scripts_eval number_of_cached_scripts
        number_of_functions number_of_libraries used_memory_vm_functions used_memory_vm_total used_memory_functions
        used_memory_scripts maxmemory mem_not_counted_for_evict mem_replication_backlog mem_total_replication_buffers
        mem_clients_slaves mem_cluster_links active_defrag_running module_fork_in_progress module_fork_last_cow_size
        total_net_repl_input_bytes total_net_repl_output_bytes sync_full sync_partial_ok sync_partial_err
        evicted_keys evicted_clients total_eviction_exceeded_time current_eviction_exceeded_time
        migrate_cached_sockets slave_expires_tracked_keys active_defrag_hits active_defrag_misses
        active_defrag_key_hits active_defrag_key_misses total_active_defrag_time current_active_defrag_time
        tracking_total_keys tracking_total_items tracking_total_prefixes unexpected_error_replies
        dump_payload_sanitizations io_threaded_reads_processed io_threaded_writes_processed reply_buffer_shrinks
        reply_buffer_expands repl_backlog_active repl_backlog_first_byte_offset repl_backlog_histlen""".split(), 0),
    **dict.fromkeys("used_memory_lua_human used_memory_vm_total_human used_memory_scripts_human maxmemory_human".split(),
                    "0B"),
    "maxmemory_policy": "noeviction",
    "instantaneous_input_repl_kbps": "0.00", "instantaneous_output_repl_kbps": "0.00",
    "master_failover_state": "no-failover", "master_replid2": "0" * 40, "second_repl_offset": -1,
    "repl_backlog_size": 1024 * 1024,  # Redis's default; there is no backlog until replication
    "mem_allocator": "pymalloc",
}  # fmt: skip

HZ = 10  # the statistics timer's frequency, as Redis's default hz
SAMPLE_EVERY_MS = 100
SAMPLES = 16
STALE_SAMPLE = 20  # keys with a TTL looked at for expired_stale_perc, as Redis's active cycle samples 20


class InstantaneousMetric:
    """A rate per second, as Redis's trackInstantaneousMetric: every
    sample, how much a counter grew since the last one, scaled to a
    second; the rate is the average of the last SAMPLES samples."""

    def __init__(self) -> None:
        self.rates: deque[float] = deque(maxlen=SAMPLES)
        self.last_value = 0
        self.last_ms = 0.0

    def sample(self, value: int, now_ms: float) -> None:
        if self.last_ms:
            elapsed = now_ms - self.last_ms
            self.rates.append((value - self.last_value) * 1000 / elapsed if elapsed > 0 else 0.0)
        self.last_value, self.last_ms = value, now_ms

    def per_second(self) -> float:
        return sum(self.rates) / len(self.rates) if self.rates else 0.0


@dataclass
class Sources:
    """What the chapters know that INFO needs, each asked when INFO runs."""

    commands_processed: Callable[[], int]
    largest_buffers: Callable[[], tuple[int, int]]  # the largest query buffer and output waiting now
    clients_memory: Callable[[], int]  # what the clients cost
    clients_with_timeout: Callable[[], int]
    aof_buffer: Callable[[], int]
    expiry_deadlines: Callable[[random.Random], list[int]]  # some keys' deadlines (Unix ms), drawn at random


class Info:
    """Completes a ServerAdmin's sections to Redis 7.0's fields and order."""

    def __init__(self, admin: ServerAdmin, sources: Sources) -> None:
        self.admin, self.sources = admin, sources
        self.metrics = {name: InstantaneousMetric() for name in ("ops", "input", "output")}
        self.next_sample = 0.0
        self.startup_memory = admin.info_memory()["used_memory"]  # before any data is loaded
        server = Path(sys.argv[0])  # Redis's build id identifies its binary; ours, the server's source
        self.build_id = hashlib.sha1(server.read_bytes()).hexdigest()[:16] if server.is_file() else "0" * 16
        self.replid = secrets.token_hex(20)
        self.random = random.Random()
        admin.section_finishers.append(self.complete)

    # --- the statistics timer (chapter 14's timers and cron_tasks) ---

    def sample_if_due(self) -> None:
        now = time.monotonic() * 1000
        if now < self.next_sample:
            return
        self.next_sample = now + SAMPLE_EVERY_MS
        traffic = self.admin.traffic
        self.metrics["ops"].sample(self.sources.commands_processed(), now)
        self.metrics["input"].sample(traffic.net_input_bytes, now)
        self.metrics["output"].sample(traffic.net_output_bytes, now)

    def next_sample_ms(self) -> int:
        return max(0, round(self.next_sample - time.monotonic() * 1000))

    # --- completing a section ---

    def complete(self, section: str, fields: dict[str, object]) -> dict[str, object]:
        names = FIELDS_IN_ORDER.get(section)
        if names is None:
            return fields
        known = {**ABSENT, **self.computed(section, fields), **fields}
        sometimes = SOMETIMES.get(section, {})
        completed: dict[str, object] = {}
        for name in names:
            completed[name] = known[name]
            if name in sometimes:
                completed.update((other, value) for other, value in fields.items()
                                 if sometimes[name].fullmatch(other) and other not in names)  # fmt: skip
        completed.update((name, value) for name, value in fields.items() if name not in completed)  # ours, after
        return completed

    def computed(self, section: str, fields: dict[str, object]) -> dict[str, object]:
        if section == "server":
            return {"redis_build_id": self.build_id, "monotonic_clock": "POSIX clock_gettime", "hz": HZ,
                    "configured_hz": HZ, "lru_clock": int(time.time()) & (2**24 - 1)}  # fmt: skip
        if section == "clients":
            largest_query, largest_output = self.sources.largest_buffers()
            return {"client_recent_max_input_buffer": largest_query, "client_recent_max_output_buffer": largest_output,
                    "clients_in_timeout_table": self.sources.clients_with_timeout()}  # fmt: skip
        if section == "memory":
            return self.memory(fields)
        if section == "stats":
            return {
                "instantaneous_ops_per_sec": round(self.metrics["ops"].per_second()),
                "instantaneous_input_kbps": f"{self.metrics['input'].per_second() / 1024:.2f}",
                "instantaneous_output_kbps": f"{self.metrics['output'].per_second() / 1024:.2f}",
                "expired_stale_perc": f"{self.stale_percent():.2f}",
            }
        if section == "replication":
            return {"master_replid": self.replid}
        if section == "cpu":
            main_thread = resource.getrusage(resource.RUSAGE_THREAD)  # INFO runs on the event loop's thread
            return {"used_cpu_sys_main_thread": f"{main_thread.ru_stime:.6f}",
                    "used_cpu_user_main_thread": f"{main_thread.ru_utime:.6f}"}  # fmt: skip
        return {}

    def memory(self, fields: dict[str, Any]) -> dict[str, object]:
        used, peak = fields["used_memory"], fields["used_memory_peak"]
        clients_memory = self.sources.clients_memory()
        aof_buffer = self.sources.aof_buffer()
        overhead = self.startup_memory + clients_memory + aof_buffer
        dataset = max(used - overhead, 0)
        above_startup = used - self.startup_memory
        with open("/proc/meminfo") as meminfo:
            total_system = int(meminfo.readline().split()[1]) * 1024  # MemTotal, in kB
        # Redis's figures for an allocator that does not report (libc):
        # allocated = active = resident = what it counts as used.
        return {
            "used_memory_peak_perc": f"{used * 100 / peak:.2f}%",
            "used_memory_overhead": overhead,
            "used_memory_startup": self.startup_memory,
            "used_memory_dataset": dataset,
            "used_memory_dataset_perc": f"{dataset * 100 / above_startup if above_startup > 0 else 0:.2f}%",
            "allocator_allocated": used, "allocator_active": used, "allocator_resident": used,
            "total_system_memory": total_system, "total_system_memory_human": human_bytes(total_system),
            "allocator_frag_ratio": "1.00", "allocator_frag_bytes": 0, "allocator_rss_ratio": "1.00",
            "allocator_rss_bytes": 0, "rss_overhead_ratio": "1.00", "rss_overhead_bytes": 0,
            "mem_fragmentation_ratio": "1.00", "mem_fragmentation_bytes": 0,
            "mem_clients_normal": clients_memory, "mem_aof_buffer": aof_buffer,
        }  # fmt: skip

    def stale_percent(self) -> float:
        """Of some keys with a TTL drawn at random, how many have expired but
        are not deleted yet, in percent (Redis estimates it so, sampling)."""
        deadlines = self.sources.expiry_deadlines(self.random)
        if not deadlines:
            return 0.0
        now = time.time() * 1000
        return 100 * sum(deadline <= now for deadline in deadlines) / len(deadlines)
