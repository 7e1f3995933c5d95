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
    commands.on_reject.append(lambda name, out, start: seen.append(("reject", name, bytes(out[start:]))))
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
    assert [event[:2] for event in seen] == [("reject", b"nosuch"), ("reject", b"set")]
    assert seen[1][2] == b"-ERR wrong number of arguments for 'set' command\r\n"  # where its error starts
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
    commands.before_call.append(queue)
    assert run(commands, b"SET", b"k", b"v") == b"-MISCONF no disk\r\n"  # the checks come before
    assert run(commands, b"GET", b"k") == b"+QUEUED\r\n"
    assert queued == [[b"get", b"k"]]
    assert seen == [("reject", b"set", b"-MISCONF no disk\r\n")]  # neither ran; only the error is a refusal
    assert commands.commands[b"set"].rejected_calls == 1 and commands.commands[b"get"].rejected_calls == 0


def test_after_command_runs_once_the_outermost_call_is_over():
    """A command that calls others (EXEC): the after_command listeners see the whole of it, once."""
    commands, seen = table()

    def both(args: list[bytes], out: ReplyBuffer) -> None:
        out.array(2)
        for name in (b"set", b"get"):
            commands.call(name, commands.commands[name], [b"k", b"v"][: commands.commands[name].arity - 1], out)

    commands.add(b"both", CommandSpec(both, 1, ()))
    commands.after_command.append(lambda: seen.append(("after", commands.nesting)))
    assert run(commands, b"BOTH") == b"*2\r\n+OK\r\n$-1\r\n"
    assert seen == [("call", b"set"), ("write", b"set"), ("call", b"get"), ("call", b"both"), ("after", 0)]
    assert run(commands, b"NOSUCH").startswith(b"-ERR")  # refused: never called, no after_command
    assert seen[-1][0] == "reject"


def test_keys_of_a_command_from_its_key_positions_or_its_finder():
    args = [b"k1", b"v1", b"k2", b"v2"]
    assert CommandSpec(print, -3, (), 1, -1, 2).keys(args) == [b"k1", b"k2"]  # MSET
    assert CommandSpec(print, -3, (), 1, -2, 1).keys([b"a", b"b", b"0"]) == [b"a", b"b"]  # BZPOPMIN a b 0
    assert CommandSpec(print, 3, (), 1, 2, 1).keys([b"src", b"dst"]) == [b"src", b"dst"]  # RENAME
    assert CommandSpec(print, 1, ()).keys([]) == []  # PING
    numkeys = CommandSpec(print, -4, (), find_keys=lambda args: args[1 : 1 + int(args[0])])
    assert numkeys.keys([b"2", b"a", b"b", b"MIN"]) == [b"a", b"b"]  # ZMPOP
