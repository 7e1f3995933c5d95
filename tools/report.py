"""Printing measured figures side by side, for the benchmarks and demos.

Their tables compare a few configurations (dict against our hashtable,
threads against an event loop, ...) on the same rows of figures.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def wide_console(min_width: int = 100) -> Console:
    """A console at least `min_width` wide, so that tables keep one line per
    row even when the output is piped (rich then assumes 80 columns)."""
    return Console(width=max(Console().width, min_width))


def comparison_table(title: str, results: dict[str, dict[str, float]], rows: list[tuple[str, str, str]]) -> Table:
    """A table with one column per configuration in `results` and one row
    per (label, field, format template) in `rows`."""
    table = Table(title=title)
    table.add_column("")
    for name in results:
        table.add_column(name, justify="right")
    for label, field, template in rows:
        table.add_row(label, *(template.format(figures[field]) for figures in results.values()))
    return table
