"""Read pictures with a trained model and print what each says: a quick look at your own photos
and scans without editing conf/ or running a stage. Nothing is written and no MLflow run is made
(predict-scans is the tracked way: `make exp S="scans.dir=<folder>"`).

    python -m digitpipe.commands.read PATH [PATH ...] [--model MODEL] [--one-digit]
    make read P="~/photos/receipt.jpg ~/scans"

PATH is a picture or a folder (every picture below it). The labels file (scans.labels_file) of
a named folder, or of a named picture's folder, adds the right answer and accuracy.
MODEL is a .keras file or a model URI MLflow knows (models:/digit-classifier@champion,
runs:/<run id>/model); without it, the workspace's model (`make run`'s). --one-digit reads
each picture as one digit instead of a written number. The unsure mark (?) and the labels
file's name come from params.yaml's scans settings.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from digitpipe.config import load_params
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths
from digitpipe.scans import read
from digitpipe.scans.labels import read_labels
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


Labels = dict[str, tuple[str, str]]  # {file name in its listing: (label, case)}


@dataclass(frozen=True)
class Named:
    """A PATH as the user typed it, its pictures, and their labels."""

    shown: str
    listing: read.Listing
    labels: Labels
    is_folder: bool


def named_pictures(paths: list[Path], labels_file: str | None) -> list[Named]:
    """Every PATH checked before the model loads (a folder's labels file too): a folder is its
    pictures, a picture a listing of one. Each picture is read once, by the first folder given
    that holds it, else where first named (a folder and a picture in it, or a link to it), and
    keeps the label any named folder's labels file, or its own folder's, gives it."""
    named = []
    for path in paths:
        shown, path = str(path), path.expanduser()
        if path.is_dir():
            labels = read_labels(path, labels_file)  # its mistakes now, not after the model loads
            listing = read.list_folder(path, key=shown)
            found = labels_file if labels_file and (path / labels_file).is_file() else None
            read.report_unread(listing, labels, found, "read")
            named.append(Named(shown, listing, labels, True))
        elif not path.exists():
            raise UserError(f"{shown}: no such picture or folder")
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{shown}: not a picture by its name (PNG, JPEG, BMP, TIFF, GIF, "
                            "WebP, HEIC)")  # fmt: skip
        else:
            listing = read.Listing(path.parent, [path], [])
            named.append(Named(shown, listing, labels_beside(path, labels_file), False))
    label_of = {
        (name.listing.folder / file).resolve(): label
        for name in reversed(named)  # the first named wins
        for file, label in name.labels.items()
    }
    seen: set[Path] = set()
    for index in sorted(range(len(named)), key=lambda i: not named[i].is_folder):
        listing = named[index].listing
        pictures = [p for p in listing.pictures if p.resolve() not in seen]
        seen.update(p.resolve() for p in pictures)
        labels = {
            p.relative_to(listing.folder).as_posix(): label_of[p.resolve()]
            for p in pictures
            if p.resolve() in label_of
        }
        named[index] = replace(
            named[index], listing=replace(listing, pictures=pictures), labels=labels
        )
    return [n for n in named if n.listing.pictures]


def labels_beside(picture: Path, labels_file: str | None) -> Labels:
    """A picture named alone keeps its label from its folder's labels file. That file was not
    named, so a mistake in it is a note and the picture is read without a label."""
    try:
        labels = read_labels(picture.parent, labels_file)
    except UserError as exc:
        print(f"read: {exc}: {picture.name} is read without a label")
        return {}
    return {picture.name: labels[picture.name]} if picture.name in labels else {}


def is_uri(name: str) -> bool:
    """models:/..., runs:/..., s3://...: a scheme, not a file name."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/", name) is not None


def load_model(name: str | None, cfg: Any, paths: Paths) -> tuple[Any, str]:
    """The model and what to call it: a .keras file, an MLflow URI (an alias pinned to its
    version now) or, without a name, the workspace's."""
    from digitpipe import models, tracking

    if name is None:
        shown = os.path.relpath(paths.model_file)
        if not paths.model_file.is_file():
            raise UserError(f"{shown}: no trained model yet: `make run` trains one, or name one "
                            "with --model")  # fmt: skip
        return models.load(paths.model_file), shown
    if not is_uri(name):
        if not Path(name).expanduser().is_file():
            raise UserError(f"--model {name}: no such file (a .keras file, or a model URI such "
                            "as models:/digit-classifier@champion)")  # fmt: skip
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
    named = named_pictures(args.paths, cfg.scans.labels_file)
    tables = []
    # the workers (for a big folder) start while the model loads
    with read.workers(sum(len(n.listing.pictures) for n in named)) as pool:
        model, model_name = load_model(args.model, cfg, paths)
        for name in named:
            table, _ = read.read_folder(
                model, name.listing, None, not args.one_digit, cfg.scans.min_confidence,
                lambda file, case: False, pool=pool, stage="read", labels=name.labels,
            )  # fmt: skip
            if name.is_folder:  # a folder's pictures by their path from where it was named
                table["file"] = [(Path(name.shown) / file).as_posix() for file in table["file"]]
            else:
                table["file"] = name.shown
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
