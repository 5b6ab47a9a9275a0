"""Read pictures with a trained model and print what each says: a quick look at your own photos
and scans without editing conf/ or running a stage. Nothing is written and no MLflow run is made
(predict-scans is the tracked way: `make exp S="scans.dir=<folder>"`).

    python -m digitpipe.commands.read PATH [PATH ...] [--model MODEL] [--one-digit]
    make read P="~/photos/receipt.jpg ~/scans"

PATH is a picture or a folder (every picture below it; the folder's scans.labels_file, when it
has one, adds the right answer and accuracy). MODEL is a .keras file or a model URI MLflow knows
(models:/digit-classifier@champion, runs:/<run id>/model); without it, the workspace's model
(`make run`'s). --one-digit reads each picture as one digit instead of a written number. The
unsure mark (?) and the labels file's name come from params.yaml's scans settings.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pandas as pd

from digitpipe.config import load_params
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths
from digitpipe.scans import read
from digitpipe.scans.normalise import IMAGE_SUFFIXES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m digitpipe.commands.read",
        description="Print what a trained model reads in pictures (nothing is written).",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="picture or folder")
    parser.add_argument("--model", help="a .keras file or an MLflow model URI")
    parser.add_argument("--one-digit", action="store_true", help="one digit per picture")
    return parser.parse_args()


def listings(paths: list[Path]) -> list[tuple[str, read.Listing, bool]]:
    """(how the user named it, its listing, whether its labels file counts) per PATH, every one
    checked before the model loads: a folder is its pictures, a picture a listing of one."""
    found = []
    for path in paths:
        shown = str(path)
        path = path.expanduser()
        if path.is_dir():
            found.append((shown, read.list_folder(path), True))
        elif not path.exists():
            raise UserError(f"{shown}: no such picture or folder")
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{shown}: not a picture by its name (PNG, JPEG, BMP, TIFF, GIF, "
                            "WebP, HEIC)")  # fmt: skip
        else:
            found.append((shown, read.Listing(path.parent, [path], []), False))
    return found


def load_model(name: str | None, cfg: Any, paths: Paths) -> tuple[Any, str]:
    """The model and what to call it: a .keras file, an MLflow URI (an alias pinned to its
    version now) or, without a name, the workspace's."""
    from digitpipe import models, tracking

    if name is None:
        return models.load(paths.model_file), os.path.relpath(paths.model_file)
    if Path(name).expanduser().suffix == ".keras" or Path(name).expanduser().is_file():
        return models.load(Path(name).expanduser()), name
    tracking.configure(cfg, paths)
    pinned = tracking.pinned_model_uri(name)
    return tracking.load_keras_model(cfg, paths, pinned, key="--model"), pinned


def shown_table(table: pd.DataFrame) -> str:
    """One line per picture: file, reading (? when unsure), confidence, label (✓ or ✗), error."""
    lines = []
    for row in table.itertuples():
        if row.error:
            lines.append((row.file, "ERROR", "", row.error))
            continue
        unsure = "" if row.accepted else "?"
        mark = "" if pd.isna(row.label) else ("✓" if row.correct else f"✗ label {row.label}")
        lines.append((row.file, f"{row.prediction}{unsure}", f"{row.confidence:.2f}", mark))
    header = ("file", "reading", "confidence", "")
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(3)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(line[:3], widths, strict=True)), line[3]]).rstrip()
        for line in [header, *lines]
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@cli
def main() -> None:
    args = parse_args()
    paths = Paths.here()
    cfg = load_params(paths.params_file)
    found = listings(args.paths)
    pictures = sum(len(listing.pictures) for _, listing, _ in found)
    tables = []
    with read.workers(pictures) as pool:  # they start while the model loads
        model, model_name = load_model(args.model, cfg, paths)
        for shown, listing, labelled in found:
            labels = cfg.scans.labels_file if labelled else None  # a folder's own, if it has one
            table, _ = read.read_folder(
                model, listing, labels if (listing.folder / str(labels)).is_file() else None,
                not args.one_digit, cfg.scans.min_confidence, lambda name, case: False,
                pool=pool, stage="read",
            )  # fmt: skip
            if labelled:  # a folder's pictures by their path from where the user named it
                table["file"] = [(Path(shown) / name).as_posix() for name in table["file"]]
            else:
                table["file"] = shown
            tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    print(shown_table(table))
    summary = read.summarise(table)
    accuracy = (
        f", {summary['accuracy']:.1%} right of {summary['labelled']} labelled"
        if "accuracy" in summary
        else ""
    )
    unsure = int((~table["accepted"] & (table["error"] == "")).sum())
    errors = plural(summary["errors"], "error")
    print(
        f"read: {plural(summary['images'], 'picture')} with {model_name}: {errors}, "
        f"{unsure} unsure (confidence under {cfg.scans.min_confidence}){accuracy}"
    )


if __name__ == "__main__":
    main()
