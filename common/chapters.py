"""Importing a chapter's server as a module: how the chapters beyond the book build on chapter 14.

Introduced in chapter 15 (epoll). The book's chapters each copy the whole
server and change it; past the book that would mean copying 1,100 lines to
change one function. Instead a later chapter imports an earlier chapter's
server.py, keeps its keyspace, commands and connection handlers unchanged,
and replaces only what it teaches (chapter 15: the event loop).

Chapter folders (`14_thread_pool`) are not Python packages, so the module
is loaded from its file, once, under the name `chapterNN` (a lesson beside
server.py: `chapterNN_name`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

CHAPTERS_DIR = Path(__file__).resolve().parents[1] / "chapters"


def load_chapter(number: int) -> ModuleType:
    """Chapter `number`'s server.py as a module (its main() is not run)."""
    return load_chapter_module(number, "server")


def load_chapter_module(number: int, module: str) -> ModuleType:
    """A module of chapter `number`'s folder: `server`, or a file beside it
    that holds one of the chapter's lessons (chapter 16's `snapshots`)."""
    name = f"chapter{number:02d}" + ("" if module == "server" else f"_{module}")
    if name in sys.modules:
        return sys.modules[name]
    paths = sorted(CHAPTERS_DIR.glob(f"{number:02d}_*/{module}.py"))
    if not paths:
        raise ImportError(f"no {module}.py in chapter {number:02d} of {CHAPTERS_DIR}")
    spec = importlib.util.spec_from_file_location(name, paths[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as `import` does
    spec.loader.exec_module(module)
    return module
