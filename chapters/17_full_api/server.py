"""Chapter 17 (beyond the book): the rest of the API of the types the book builds.

The book teaches the machinery: a hashtable, a sorted set, timers, TTLs.
A Redis user reaches for the whole API of those types. This chapter adds
it, family by family, each in a common/ module of its own:

* strings (common/strings.py): SETNX, SETEX, PSETEX, GETSET, GETDEL,
  GETEX, APPEND, STRLEN, GETRANGE, SETRANGE, MGET, MSET, MSETNX, INCR,
  INCRBY, DECR, DECRBY, INCRBYFLOAT (in C's long double, as Redis);
* keys (common/keys.py): RENAME, RENAMENX, COPY, RANDOMKEY, TOUCH, TIME;
* SCAN and ZSCAN, the lesson of the chapter: a cursor that survives the
  progressive resizing of chapter 08's hashtable (HMap.scan);
* sorted sets (common/zset_commands.py): ZPOPMIN, ZPOPMAX, ZMPOP,
  ZREMRANGEBYRANK, ZREMRANGEBYSCORE, the lexicographic ZRANGEBYLEX,
  ZREVRANGEBYLEX, ZLEXCOUNT, ZREMRANGEBYLEX, and the set operations ZUNION,
  ZINTER, ZDIFF, their STORE forms and ZINTERCARD.

Still to come in this chapter (issue 13): blocking pops (BZPOPMIN,
BZPOPMAX, BZMPOP), ZRANGE ... BYLEX, ZRANGESTORE and ZRANDMEMBER.

Everything else is chapter 16's server, imported unchanged, persistence
included: the new write commands are logged to the AOF like the others,
SETEX, PSETEX and GETEX with the absolute deadline they set.

    make run-chapter 17
    redis-cli MSET a 1 b 2
    redis-cli INCRBYFLOAT a 0.1
    redis-cli SCAN 0 MATCH "*" COUNT 100
"""

from __future__ import annotations

import sys
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path so
# `common` imports when this file is run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.chapters import load_chapter  # noqa: E402
from common.keys import KeyCommands  # noqa: E402
from common.net import parse_options  # noqa: E402
from common.strings import StringCommands  # noqa: E402
from common.zset_commands import SortedSetCommands  # noqa: E402

chapter16 = load_chapter(16)  # the server this chapter extends, persistence included
chapter14 = chapter16.chapter14  # its keyspace: what the new commands work on


def add_commands() -> None:
    """The new families join chapter 14's command table before chapter 16
    wraps its write commands for the AOF, so they are logged too."""
    for family in (StringCommands(chapter14), KeyCommands(chapter14), SortedSetCommands(chapter14)):
        for name, spec in family.specs().items():
            chapter14.COMMANDS.add(name, spec)
    # Logged with the deadline they set, not the time they were given (chapter 16's rule).
    chapter16.RELATIVE_TIME[b"setex"] = (lambda args: True, 2)
    chapter16.RELATIVE_TIME[b"psetex"] = (lambda args: True, 2)
    chapter16.RELATIVE_TIME[b"getex"] = (chapter16.relative_options_from(1), None)


def main() -> None:
    options = parse_options("Chapter 17: the full API", chapter16.add_options, client_limits=True)
    add_commands()
    chapter16.run(options)


if __name__ == "__main__":
    main()
