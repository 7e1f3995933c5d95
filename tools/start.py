"""`make start DIR=path`: a place to write your own server, outside the repository's chapters.

Copies tools/starter/server.py (a minimal server that passes chapter 03)
to DIR/server.py, never over an existing file, and prints the commands that
test it against the chapters.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

STARTER = Path(__file__).resolve().parent / "starter" / "server.py"


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].strip():
        raise SystemExit("usage: make start DIR=path/to/your/server   (e.g. make start DIR=~/my-redis)")
    folder = Path(sys.argv[1]).expanduser().resolve()
    target = folder / "server.py"
    if target.exists():
        print(f"{target} already exists: left as it is.")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STARTER, target)
        print(f"Created {target}: a server that passes chapter 03.")
    server = shlex.quote(f"python {shlex.quote(str(target))} --port {{port}}")
    print(
        "\nNext:\n"
        f"  make test-chapter 3 SERVER={server}     # passes as it is\n"
        "  read chapters/04_protocol/README.md (the book's chapter 4), change your server, then\n"
        f"  make test-chapter 4 SERVER={server}\n"
        f"  make progress SERVER={server}           # every chapter at once"
    )


if __name__ == "__main__":
    main()
