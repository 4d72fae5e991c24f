"""Regenerate README.md's configuration table from the settings code (server/settings.py).

    python3 deploy/config_table.py          rewrite the table between the markers in README.md
    python3 deploy/config_table.py --check  exit 1 if the README's table is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.settings import settings_table_markdown  # noqa: E402

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{settings_table_markdown()}\n{END}{tail}"
    if "--check" in argv:
        if updated != text:
            print("README.md's configuration table is stale: run python3 deploy/config_table.py", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        readme.write_text(updated)
        print("README.md: configuration table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
