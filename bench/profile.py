"""Summarise a py-spy raw profile (`python -m bench --profile DIR` writes one per server): samples per
thread, then the functions with the most samples on the stack (inclusive) and at its top (self), as a
share of the chosen thread's samples. --within NAME keeps only the stacks passing through a function
whose text contains NAME (e.g. "_attempt" for the delivery worker).

    python -m bench.profile bench/results/profiles/delivery-1.txt --within _attempt --top 25
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _short(frame: str) -> str:
    """`fn (path/to/module.py:123)` → `fn (module.py)`: the line number splits one function in many."""
    name, _, where = frame.partition(" (")
    file = where.split(":")[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if file else name


def summarise(stacks: list[tuple[list[str], int]], thread: str, within: str | None, top: int) -> str:
    threads: Counter[str] = Counter()
    for frames, n in stacks:
        threads[frames[0]] += n
    lines = ["samples per thread:"] + [f"  {n:>8}  {t}" for t, n in threads.most_common(8)]
    chosen = [(f, n) for f, n in stacks if thread in f[0]]
    if within:
        chosen = [(f, n) for f, n in chosen if any(within in x for x in f)]
    total = sum(n for _, n in chosen) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in chosen:
        for name in {_short(x) for x in frames[1:]}:
            inclusive[name] += n
        own[_short(frames[-1])] += n
    scope = f"thread matching {thread!r}" + (f", stacks through {within!r}" if within else "")
    lines.append(f"\n{total} samples ({scope}); inclusive (on the stack):")
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    lines.append("\nself (top of the stack):")
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--thread", default="MainThread", help="only stacks of threads whose name contains this")
    parser.add_argument("--within", help="only stacks through a function whose text contains this")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    print(summarise(load(args.file), args.thread, args.within, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
