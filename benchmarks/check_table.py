"""Every trained check of the book beside its band and measured seed spread, as a table.

Reads the stored outputs of ``book/*.ipynb`` (the one line that ``lb.checks.check`` prints per
check) and prints a Markdown table: chapter, quantity, value, truth, allowed band, seed
spread, and the band's half-width in seed spreads (the rule: at least 4).

    python benchmarks/check_table.py > /tmp/checks.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

BOOK = Path(__file__).resolve().parents[1] / "book"
LINE = re.compile(
    r"^check (?P<quantity>.+): (?P<value>\S+)(?: \| truth (?P<truth>\S+))? \| allowed "
    r"\[(?P<low>\S+), (?P<high>\S+)\](?: \| seed spread (?P<spread>\S+))? \| (?P<verdict>\w+)"
)


def rows(book: Path = BOOK) -> list[dict[str, str]]:
    """One dict per printed check line of every stored chapter."""
    found = []
    for path in sorted(book.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                for line in output.get("text", "").splitlines():
                    match = LINE.match(line.strip())
                    if match:
                        found.append({"chapter": path.stem, **match.groupdict()})
    return found


def _spreads_in_half_width(row: dict[str, str]) -> str:
    if not row["spread"]:
        return ""
    low, high, spread = float(row["low"]), float(row["high"]), float(row["spread"])
    if spread == 0:
        return "exact"
    value = float(row["value"])
    if row["truth"] and low > -float("inf") and high < float("inf"):
        return f"{(high - low) / 2 / spread:.1f}"
    edge = high if high < float("inf") else low
    return f"{abs(edge - value) / spread:.1f} (one-sided, from the value)"


def main() -> int:
    print("| chapter | check | value | truth | allowed | seed spread | half-width / spread |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows():
        print(
            f"| {row['chapter'][:2]} | {row['quantity']} | {row['value']} | {row['truth'] or ''} "
            f"| [{row['low']}, {row['high']}] | {row['spread'] or '-'} "
            f"| {_spreads_in_half_width(row)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
