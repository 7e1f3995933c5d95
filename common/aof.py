"""Redis 7's append-only file: the manifest, and reading logged commands.

Introduced in chapter 16 (persistence). Since Redis 7.0 the append-only
"file" is a directory (appenddirname, "appendonlydir") of several files
listed by a manifest (`appendonly.aof.manifest`), one line per file:

    file appendonly.aof.1.base.rdb seq 1 type b     the base: a snapshot
    file appendonly.aof.1.incr.aof seq 1 type i     writes since, as commands

A rewrite (BGREWRITEAOF) never touches a file being written: writes go to
a new incr file at once, a child writes a new base, and one rename of the
manifest then switches to them (the old files become history, type h, and
are deleted). The base is an RDB snapshot (aof-use-rdb-preamble yes, the
default), or commands; incr files hold commands in RESP, exactly as
clients send them:

    *3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n

The format is summarised from Redis's aof.c; the code is ours. What to
log, when to write and fsync, and how to rewrite is chapter 16's lesson,
in its server.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

BASE, INCR, HISTORY = "b", "i", "h"
MAX_LINE = 64 * 1024  # a count or length line longer than this is corrupt, not data


class AofError(Exception):
    """The append-only file cannot be loaded; the message names the file and offset."""


class AofTruncated(Exception):
    """The file ends in the middle of a command (a crash while writing it);
    `valid_up_to` is the offset just past the last complete command."""

    def __init__(self, valid_up_to: int) -> None:
        super().__init__(f"the last command is incomplete: valid up to byte {valid_up_to}")
        self.valid_up_to = valid_up_to


@dataclass
class AofFile:
    name: str
    seq: int
    kind: str  # BASE, INCR or HISTORY


@dataclass
class Manifest:
    """Which files make up the append-only file, in the order they replay."""

    base: AofFile | None = None
    incrs: list[AofFile] = field(default_factory=list)
    history: list[AofFile] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, path: str) -> Manifest:
        """Read a manifest as Redis writes it (`file <name> seq <n> type <b|i|h>` lines; # comments)."""
        manifest = cls()
        for number, line in enumerate(text.splitlines(), 1):
            if line.startswith("#"):
                continue
            words = line.split()
            fields = dict(zip(words[0::2], words[1::2]))
            name, seq, kind = fields.get("file"), fields.get("seq", ""), fields.get("type")
            if len(words) < 6 or len(words) % 2 or not name or not seq.isdigit() or kind not in (BASE, INCR, HISTORY):
                raise AofError(f"invalid AOF manifest {path}, line {number}: {line!r}")
            if os.path.basename(name) != name:
                raise AofError(f"invalid AOF manifest {path}, line {number}: a file name, not a path, is expected")
            entry = AofFile(name, int(seq), kind)
            if kind == BASE:
                if manifest.base is not None:
                    raise AofError(f"invalid AOF manifest {path}: two base files")
                manifest.base = entry
            elif kind == INCR:
                if manifest.incrs and entry.seq <= manifest.incrs[-1].seq:
                    raise AofError(f"invalid AOF manifest {path}: incr files out of order")
                manifest.incrs.append(entry)
            else:
                manifest.history.append(entry)
        if manifest.base is None and not manifest.incrs:
            raise AofError(f"invalid AOF manifest {path}: it lists no file")
        return manifest

    def render(self) -> str:
        files = ([self.base] if self.base else []) + self.history + self.incrs
        return "".join(f"file {entry.name} seq {entry.seq} type {entry.kind}\n" for entry in files)

    def replay_order(self) -> list[AofFile]:
        return ([self.base] if self.base else []) + self.incrs

    def add_incr(self, prefix: str) -> AofFile:
        """A new incr file after the last; writes go to it from now on."""
        seq = self.incrs[-1].seq + 1 if self.incrs else 1
        entry = AofFile(f"{prefix}.{seq}.incr.aof", seq, INCR)
        self.incrs.append(entry)
        return entry

    def new_base(self, prefix: str, keep_from: AofFile | None = None) -> AofFile:
        """A new base, replacing the old one and every incr file before
        `keep_from` (after a rewrite: the incr file opened when it began;
        None: all of them), which become history."""
        seq = self.base.seq + 1 if self.base else 1
        if self.base is not None:
            self.history.append(AofFile(self.base.name, self.base.seq, HISTORY))
        kept = [entry for entry in self.incrs if keep_from is not None and entry.seq >= keep_from.seq]
        self.history += [AofFile(entry.name, entry.seq, HISTORY) for entry in self.incrs if entry not in kept]
        self.incrs = kept
        self.base = AofFile(f"{prefix}.{seq}.base.rdb", seq, BASE)
        return self.base


class CommandReader:
    """Reads the RESP commands of an append-only file, from `file`'s current
    position (`offset` bytes into it), as Redis's loader does: each must
    be a multibulk array (`*<count>`, then `$<length>` and that many bytes,
    each followed by CRLF).

    `commands()` yields each command's arguments; `valid_up_to` is the
    offset just past the last complete one. It raises AofTruncated if the
    file ends inside a command, and AofError on anything else malformed.
    """

    def __init__(self, file: BinaryIO, path: str, offset: int = 0) -> None:
        self.file = file
        self.path = path
        self.offset = offset
        self.valid_up_to = offset

    def commands(self) -> Iterator[list[bytes]]:
        readline, read = self.file.readline, self.file.read
        while True:
            line = readline(MAX_LINE)
            if not line:
                return
            if line[:1] == b"#":  # an annotation (Redis writes timestamps this way); not a command
                self._advance(line)
                self.valid_up_to = self.offset
                continue
            count = self._number(line, b"*")
            if count < 1:
                raise self._corrupt("a command has no arguments")
            args = []
            for _ in range(count):
                length = self._number(readline(MAX_LINE), b"$")
                data = read(length + 2)
                if len(data) < length + 2:
                    raise AofTruncated(self.valid_up_to)
                if data[-2:] != b"\r\n":
                    raise self._corrupt("an argument does not end with CRLF")
                self.offset += length + 2
                args.append(data[:-2])
            self.valid_up_to = self.offset
            yield args

    def _number(self, line: bytes, marker: bytes) -> int:
        """`<marker><digits>\\r\\n`, or an error; an incomplete line at the end is a truncation."""
        self._advance(line)
        body = line[1:-2]
        if line[:1] != marker or line[-2:] != b"\r\n" or not body.isdigit():
            raise self._corrupt(f"expected '{marker.decode()}<number>', found {line[:40]!r}", len(line))
        return int(body)

    def _advance(self, line: bytes) -> None:
        if not line.endswith(b"\n"):
            if len(line) < MAX_LINE:  # the file ended in the middle of this line
                raise AofTruncated(self.valid_up_to)
            raise self._corrupt("a line is too long", 0)
        self.offset += len(line)

    def _corrupt(self, message: str, back: int = 0) -> AofError:
        return AofError(f"bad format in the append-only file {self.path} at byte {self.offset - back}: {message}")
