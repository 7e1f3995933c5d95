"""`make diff-chapter N` for a chapter that imports its predecessor instead of copying it.

Chapters 03-14 copy the whole server forward, so a plain diff of the two
folders shows the step. From chapter 15 on, a chapter imports the previous
chapter's server (common/chapters.py) and defines only what it changes: a
folder diff would show 1,100 lines deleted. This shows the step instead:
each function the new chapter redefines, as a diff against the one it
replaces, then what is new (with the files of the chapter's lesson that
server.py loads beside it, whole).

    .venv/bin/python tools/diff_chapter.py 15
"""

from __future__ import annotations

import ast
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def functions(path: Path) -> dict[str, str]:
    """Top-level function and class name -> its source, decorators included."""
    source = path.read_text()
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = source.splitlines(keepends=True)[start - 1 : node.end_lineno]
            found[node.name] = "".join(lines)
    return found


def main() -> None:
    number = int(sys.argv[1])
    new = next(ROOT.glob(f"chapters/{number:02d}_*/server.py"))
    imported = re.search(r"load_chapter\((\d+)\)", new.read_text())
    if imported is None:
        raise SystemExit(f"{new} does not import an earlier chapter")
    old = next(ROOT.glob(f"chapters/{int(imported.group(1)):02d}_*/server.py"))
    before, after = functions(old), functions(new)
    replaced = [name for name in after if name in before]
    added = [name for name in after if name not in before]
    print(f"{new.relative_to(ROOT)} imports {old.relative_to(ROOT)} and keeps all of it but:")
    print(f"  replaces: {', '.join(replaced) or '-'}")
    print(f"  adds:     {', '.join(added) or '-'}")
    for name in replaced:
        print()
        sys.stdout.writelines(
            difflib.unified_diff(
                before[name].splitlines(keepends=True), after[name].splitlines(keepends=True),
                f"{old.relative_to(ROOT)}: {name}", f"{new.relative_to(ROOT)}: {name}",
            )  # fmt: skip
        )
    for name in added:
        print(f"\n+++ {new.relative_to(ROOT)}: {name} (new)")
        sys.stdout.writelines(f"+{line}" for line in after[name].splitlines(keepends=True))
    lessons = re.findall(r'load_chapter_module\(%d, "(\w+)"\)' % number, new.read_text())
    for lesson in lessons:  # files of the chapter's lesson that server.py wires in: new, whole
        path = new.parent / f"{lesson}.py"
        print(f"\n+++ {path.relative_to(ROOT)} (new)")
        sys.stdout.writelines(f"+{line}" for line in path.read_text().splitlines(keepends=True))
    others = sorted(p.name for p in new.parent.iterdir()
                    if p.is_file() and p.name != "server.py" and p.stem not in lessons)  # fmt: skip
    print(f"\nAlso in {new.parent.relative_to(ROOT)}: {', '.join(others)}")


if __name__ == "__main__":
    main()
