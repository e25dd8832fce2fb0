"""Print the supported-ops table from edgecnn's op registry, or write it into README.md.

    python tools/ops_table.py            # print
    python tools/ops_table.py --write    # replace README.md's block between the markers

The table is derived from edgecnn/ops/ (each op class's builtin names and summary); README's
copy is never edited by hand, and tests/test_ops_registry.py checks the two are equal.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from edgecnn import ops

BEGIN, END = "<!-- ops:begin (tools/ops_table.py) -->", "<!-- ops:end -->"
README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme_block(text: str) -> str:
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    return m.group(1).rstrip("\n") if m else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="update README.md in place")
    args = ap.parse_args(argv)
    table = ops.supported_table()
    if not args.write:
        print(table)
        return 0
    with open(README, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        print(f"{README}: no {BEGIN} ... {END} block", file=sys.stderr)
        return 2
    text = re.sub(re.escape(BEGIN) + r"\n.*?" + re.escape(END),
                  lambda m: f"{BEGIN}\n{table}\n{END}", text, flags=re.S)
    with open(README, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
