"""Regenerate the committed sample scans (real UCI handwriting rendered as scans).

python -m digitpipe.commands.make_scans --out data/scans --per-digit 3     (make scans)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digitpipe.scans.synthetic import make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/scans"))
    parser.add_argument("--per-digit", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    labels = make(args.out, args.per_digit, args.seed)
    print(f"wrote {len(labels)} scans and labels.csv to {args.out}")


if __name__ == "__main__":
    main()
