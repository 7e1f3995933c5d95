"""Watch an AVL tree balance itself: insert and delete keys, print the tree.

    .venv/bin/python chapters/10_avl_tree/show_tree.py                 # 1..10 in order
    .venv/bin/python chapters/10_avl_tree/show_tree.py 50 30 70 20 40 60 80 10 --delete 30
    .venv/bin/python chapters/10_avl_tree/show_tree.py --steps 1 2 3 4 5 6 7

Each node shows its key, its height h and the size n of its subtree (the
count that makes rank and offset queries O(log n)). Inserting keys in
order would make a plain binary search tree a linked list; watch the
rotations keep this one's height logarithmic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Chapter folders are not packages: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rich.console import Console  # noqa: E402
from rich.tree import Tree  # noqa: E402

from common.avl import AVLNode, avl_delete, avl_insert, avl_rank  # noqa: E402


class KeyNode(AVLNode):
    __slots__ = ("key",)

    def __init__(self, key: int) -> None:
        super().__init__()
        self.key = key


def less(a: KeyNode, b: KeyNode) -> bool:
    return a.key < b.key


def render(root: KeyNode | None, title: str) -> Tree:
    tree = Tree(f"[bold]{title}[/bold]")
    if root is not None:
        add_subtree(tree, root, "")
    else:
        tree.add("[dim](empty)[/dim]")
    return tree


def add_subtree(branch: Tree, node: KeyNode, side: str) -> None:
    label = f"{side}[cyan]{node.key}[/cyan]  [dim]h={node.height} n={node.count} rank={avl_rank(node)}[/dim]"
    child_branch = branch.add(label)
    for child, name in ((node.left, "L: "), (node.right, "R: ")):
        if child is not None:
            add_subtree(child_branch, child, name)
        elif node.left is not None or node.right is not None:
            child_branch.add(f"[dim]{name}-[/dim]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("keys", nargs="*", type=int, help="keys to insert, in order (default: 1..10)")
    parser.add_argument("--delete", nargs="*", type=int, default=[], help="keys to delete afterwards")
    parser.add_argument("--steps", action="store_true", help="print the tree after every operation")
    options = parser.parse_args()
    keys = options.keys or list(range(1, 11))
    console = Console()
    root: KeyNode | None = None
    nodes: dict[int, KeyNode] = {}
    for key in keys:
        node = KeyNode(key)
        nodes.setdefault(key, node)
        root = avl_insert(root, node, less)
        if options.steps:
            console.print(render(root, f"after inserting {key}"))
    for key in options.delete:
        node = nodes.pop(key, None)
        if node is None:
            console.print(f"[yellow]{key} is not in the tree[/yellow]")
            continue
        root = avl_delete(node)
        if options.steps:
            console.print(render(root, f"after deleting {key}"))
    if not options.steps:
        console.print(render(root, f"{len(keys)} inserted, {len(options.delete)} deleted"))


if __name__ == "__main__":
    main()
