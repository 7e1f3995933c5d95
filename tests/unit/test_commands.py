"""common/commands.py: the two steps of running a request, and the seams
later chapters register into (each of them exercised here)."""

import pytest

from common.commands import CommandSpec, CommandTable
from common.resp3 import ReplyBuffer

pytestmark = pytest.mark.since(7)


def table() -> tuple[CommandTable, list]:
    seen: list = []

    def set_(args: list[bytes], out: ReplyBuffer) -> None:
        out.simple("OK")

    def get(args: list[bytes], out: ReplyBuffer) -> None:
        if args[0] == b"bad":
            out.error("WRONGTYPE Operation against a key holding the wrong kind of value")
        else:
            out.null()

    commands = CommandTable({b"set": CommandSpec(set_, 3, ("write",)), b"get": CommandSpec(get, 2, ("readonly",))})
    commands.after_call.append(lambda name, spec, args, out, start: seen.append(("call", name)))
    commands.after_write.append(lambda name, spec, args, out, start: seen.append(("write", name)))
    commands.on_reject.append(lambda name, out: seen.append(("reject", name)))
    return commands, seen


def run(commands: CommandTable, *request: bytes) -> bytes:
    out = ReplyBuffer()
    commands.process_command(list(request), out)
    return bytes(out)


def test_listeners_hear_what_ran_and_reads_pay_for_no_write_seam():
    commands, seen = table()
    assert run(commands, b"SET", b"k", b"v") == b"+OK\r\n"
    assert run(commands, b"GET", b"k") == b"$-1\r\n"
    assert run(commands, b"GET", b"bad").startswith(b"-WRONGTYPE")
    assert seen == [("call", b"set"), ("write", b"set"), ("call", b"get"), ("call", b"get")]
    assert commands.commands[b"get"].failed_calls == 1


def test_refusals_are_counted_and_told():
    commands, seen = table()
    assert run(commands, b"NOSUCH").startswith(b"-ERR unknown command 'NOSUCH'")
    assert run(commands, b"SET", b"k").startswith(b"-ERR wrong number of arguments for 'set' command")
    assert seen == [("reject", b"nosuch"), ("reject", b"set")]
    assert commands.commands[b"set"].rejected_calls == 1


def test_a_check_may_refuse_or_answer_in_the_commands_place():
    commands, seen = table()
    queued: list[list[bytes]] = []

    def refuse_writes(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
        out.error("MISCONF no disk")
        return True

    def queue(name: bytes, spec: CommandSpec, args: list[bytes], out: ReplyBuffer) -> bool:
        if name == b"get":  # as MULTI queues every command
            queued.append([name, *args])
            out.simple("QUEUED")
            return True
        return False

    commands.write_checks.append(refuse_writes)
    commands.checks.append(queue)
    assert run(commands, b"SET", b"k", b"v") == b"-MISCONF no disk\r\n"
    assert run(commands, b"GET", b"k") == b"+QUEUED\r\n"
    assert queued == [[b"get", b"k"]]
    assert seen == [("reject", b"set")]  # neither ran; only the error is a refusal
    assert commands.commands[b"set"].rejected_calls == 1 and commands.commands[b"get"].rejected_calls == 0
