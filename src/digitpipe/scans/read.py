"""Read a folder of scans/photos into one table: a row per picture, its reading or its error.

A picture may hold one digit or a written number; each is read left to right with its
confidence, and the picture's confidence is its least sure digit. A file that cannot give a
digit becomes an error row; every other file is still read. Big folders go in chunks (memory
stays flat) and, from POOL_FROM files on, are normalised in worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from digitpipe.errors import UserError
from digitpipe.scans.labels import read_labels
from digitpipe.scans.normalise import IMAGE_SUFFIXES, Picture, read_digits, started

if TYPE_CHECKING:
    import keras

CHUNK = 256  # pictures normalised and predicted at a time: memory stays bounded
SURE_WHOLE = 0.97  # a blob read whole this surely is one digit, however its cut parts read
ONE_DIGIT_ASPECT = 1.6  # ... unless it is this many times wider than tall: then it is digits
TWO_DIGITS_WIDE = 1.6  # ... or this many times wider than the picture's other (uncut) digits
WIDE_PARTS_SURE = 0.5  # ... where its parts read this surely together (a wide 0's halves do not)
POOL_FROM = 400  # from this many pictures on, normalise in worker processes (start-up ~1 s)


@dataclass
class Reading:
    """One row of predictions.csv."""

    file: str
    prediction: str | None = None
    confidence: float | None = None
    accepted: bool = False
    digits: str = ""  # per-digit confidences of a number, e.g. "2:0.99 0:0.97"
    label: str | None = None
    correct: bool | None = None
    case: str = ""
    error: str = ""
    note: str = ""

    def caption(self) -> str:
        if self.error:
            return f"{self.file}\nERROR: {self.error}"
        unsure = "" if self.accepted else "?"
        mark = "" if self.label is None else (" ✓" if self.correct else f" ✗ {self.label}")
        # the confidence last: what a narrow gallery cell cuts first
        return f"{self.file}\n→ {self.prediction}{unsure}{mark} ({self.confidence:.2f})"


@dataclass
class GalleryItem:
    thumbnail: np.ndarray | None
    inputs: np.ndarray | None  # the normalised digits side by side
    caption: str


class FirstN:
    """Gallery choice: the first n pictures."""

    def __init__(self, n: int):
        self.left = n

    def __call__(self, name: str, case: str) -> bool:
        self.left -= 1
        return self.left >= 0


class FewPerCase:
    """Gallery choice: the first `per_case` pictures of every case, so each case is shown."""

    def __init__(self, per_case: int):
        self.per_case = per_case
        self.seen: dict[str, int] = {}

    def __call__(self, name: str, case: str) -> bool:
        self.seen[case] = self.seen.get(case, 0) + 1
        return self.seen[case] <= self.per_case


@dataclass(frozen=True)
class Listing:
    """A folder's files, found in one walk: its pictures (by extension, in a stable order) and
    the other files' names (said to be skipped). A folder of 100,000 scans on a network drive
    is walked once, not once per use."""

    folder: Path
    pictures: list[Path]
    others: list[str]


def list_folder(folder: Path, key: str = "scans.dir") -> Listing:
    """Every file below `folder`, pictures apart; a user error naming `key` (where the folder
    was given) when there is no picture."""
    if not folder.is_dir():
        raise UserError(f"{key}: {folder} is not a folder")
    pictures, others = [], []
    # a broken link named like a picture is listed, to become an error row; a folder is not
    found = (p for p in folder.rglob("*") if p.is_file() or (p.is_symlink() and not p.exists()))
    for path in sorted(found):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            pictures.append(path)
        else:
            others.append(path.relative_to(folder).as_posix())
    if not pictures:
        raise UserError(f"{key}: no images (PNG, JPEG, BMP, TIFF, GIF, WebP, HEIC) in {folder}")
    return Listing(folder, pictures, others)


def list_images(folder: Path) -> list[Path]:
    """Every file with an image extension below `folder`, in a stable order."""
    return list_folder(folder).pictures


@contextmanager
def workers(count: int) -> Iterator[Executor | None]:
    """Processes for normalising a big folder (of `count` pictures) on every core (None for a
    few pictures: not worth starting), started at once so that they import while the caller
    loads its model."""
    cores = os.cpu_count() or 1
    if cores < 2 or count < POOL_FROM:
        yield None
        return
    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in range(cores):
            pool.submit(started)
        yield pool


def predict_chunk(model: keras.Model, pictures: list[Picture]) -> list[list[tuple[int, float]]]:
    """(digit, confidence) per digit of each picture, from one batched prediction. A cut of
    touching digits is undone (the picture's inputs too) where the blob reads surer whole."""
    batch = [x for p in pictures for x in [*p.inputs, *(w.input for w in p.wholes)]]
    # one call on the whole chunk: model.predict's per-call set-up costs 4x the arithmetic here
    probs = np.asarray(model.predict_on_batch(np.stack(batch)[..., None])) if batch else []
    digits, at = [], 0
    for picture in pictures:
        n, m = len(picture.inputs), len(picture.wholes)
        read = [(int(p.argmax()), float(p.max())) for p in probs[at : at + n + m]]
        digits.append(taken_cuts(picture, read[:n], read[n:]))
        at += n + m
    return digits


def taken_cuts(
    picture: Picture, parts: list[tuple[int, float]], wholes: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """The picture's digits, each cut of touching digits kept only where the blob read whole is
    unsure (under SURE_WHOLE) and its digits read surer together (the product of their
    confidences); where not, the blob is one digit, in the readings and in picture.inputs (the
    gallery's). On 3,000 MNIST test digits drawn as pictures, 2 were cut (0.07 %) against 41
    without this check. A blob far wider than tall, or than the number's uncut digits, stays
    cut: squeezed into one box, two narrow touching digits read as one, surely."""
    for whole, (digit, confidence) in reversed(list(zip(picture.wholes, wholes, strict=True))):
        together = float(np.prod([c for _, c in parts[whole.first : whole.first + whole.count]]))
        if whole.aspect > ONE_DIGIT_ASPECT or (
            whole.wide > TWO_DIGITS_WIDE and together >= WIDE_PARTS_SURE
        ):
            continue
        if confidence >= SURE_WHOLE or confidence > together:
            parts[whole.first : whole.first + whole.count] = [(digit, confidence)]
            picture.inputs[whole.first : whole.first + whole.count] = [whole.input]
    return parts


def reading(
    name: str,
    picture: Picture,
    digits: list[tuple[int, float]],
    labels: dict,
    min_confidence: float,
) -> Reading:
    label, case = labels.get(name, (None, ""))
    row = Reading(file=name, label=label, case=case, error=picture.error, note=picture.note)
    if picture.error:
        row.correct = None if label is None else False
        return row
    row.prediction = "".join(str(d) for d, _ in digits)
    row.confidence = round(min(c for _, c in digits), 4)
    row.accepted = row.confidence >= min_confidence
    row.digits = " ".join(f"{d}:{c:.2f}" for d, c in digits) if len(digits) > 1 else ""
    row.correct = None if label is None else row.prediction == label
    return row


def read_folder(
    model: keras.Model,
    folder: Path | Listing,
    labels_file: str | None,
    split: bool,
    min_confidence: float,
    gallery_pick: Callable[[str, str], bool],
    pool: Executor | None = None,
    stage: str = "predict-scans",
    labels: dict[str, tuple[str, str]] | None = None,
) -> tuple[pd.DataFrame, list[GalleryItem]]:
    """Every picture of `folder` (or of its listing) read by `model`: (predictions table,
    gallery items for the pictures that `gallery_pick(file, case)` wants). Normalised in `pool`
    (see `workers`) when given, while the model predicts the chunk before. `stage` names the
    progress lines. `labels` ({file: (label, case)}), when given, are used instead of the
    labels file's, and what is not read is left to the caller to report."""
    listing = folder if isinstance(folder, Listing) else list_folder(folder)
    root, files = listing.folder, listing.pictures
    if labels is None:
        labels = read_labels(root, labels_file)
        report_unread(listing, labels, labels_file, stage)
    rows: list[Reading] = []
    gallery: list[GalleryItem] = []
    chunks = [files[start : start + CHUNK] for start in range(0, len(files), CHUNK)]

    def normalised(chunk: list[Path]) -> tuple[list[str], list[bool], Iterator[Picture]]:
        """Starts normalising a chunk (in the workers, when there are) and returns at once."""
        names = [p.relative_to(root).as_posix() for p in chunk]
        wanted = [gallery_pick(n, labels.get(n, (None, ""))[1]) for n in names]
        args = (read_digits, chunk, [split] * len(chunk), wanted)
        return names, wanted, pool.map(*args, chunksize=16) if pool is not None else map(*args)

    upcoming = normalised(chunks[0])
    for index in range(len(chunks)):
        names, wanted, pending = upcoming
        if index + 1 < len(chunks):  # queued now: the workers never wait for the model
            upcoming = normalised(chunks[index + 1])
        pictures = list(pending)
        for name, picture, digits, want in zip(
            names, pictures, predict_chunk(model, pictures), wanted, strict=True
        ):
            row = reading(name, picture, digits, labels, min_confidence)
            rows.append(row)
            if want:
                shown = np.concatenate(picture.inputs, axis=1) if picture.inputs else None
                gallery.append(GalleryItem(picture.thumbnail, shown, row.caption()))
        if len(files) > CHUNK:
            done = min((index + 1) * CHUNK, len(files))
            print(f"{stage}: {done}/{len(files)} images")
    table = pd.DataFrame([asdict(r) for r in rows]).astype({"correct": "boolean"})
    return table, gallery


def report_unread(listing: Listing, labels: dict, labels_file: str | None, stage: str) -> None:
    """Say what will not be read: files without a picture's name, labels of absent files, and
    a labels file that is not there (a misspelt scans.labels_file measured nothing, silently)."""
    if labels_file and not (listing.folder / labels_file).is_file():
        print(f"{stage}: no {labels_file} in {listing.folder}: read without labels, no accuracy")
    pictures = {p.relative_to(listing.folder).as_posix() for p in listing.pictures}
    others = [name for name in listing.others if Path(name).name != labels_file]
    absent = sorted(set(labels) - pictures)
    for what, names in (("not a picture by its name, skipped", others),
                        (f"in {labels_file} but not in the folder", absent)):  # fmt: skip
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            print(f"{stage}: {len(names)} file(s) {what}: {', '.join(names[:3])}{more}")


def digits_right(prediction: str | None, label: str) -> int:
    """The label's digits read right, place by place; none when the count of digits is wrong
    (a digit lost or split shifts every one after it)."""
    if not isinstance(prediction, str) or len(prediction) != len(label):
        return 0
    return sum(p == d for p, d in zip(prediction, label, strict=True))


def summarise(table: pd.DataFrame) -> dict:
    """Counts, accuracy overall and on accepted readings, acceptance rate, accuracy per case, and
    the share of digits read right per case (a 10-digit form row is wrong for one digit in ten:
    this says how far from right)."""
    labelled = table[table["label"].notna()]
    summary: dict = {
        "images": int(len(table)),
        "errors": int((table["error"] != "").sum()),
        "labelled": int(len(labelled)),
    }
    if len(labelled):
        accepted = labelled[labelled["accepted"]]
        summary["accuracy"] = round(float(labelled["correct"].astype(bool).mean()), 4)
        summary["acceptance_rate"] = round(len(accepted) / len(labelled), 4)
        if len(accepted):
            summary["accepted_accuracy"] = round(float(accepted["correct"].astype(bool).mean()), 4)
        cased = labelled[labelled["case"] != ""]
        if len(cased):
            cases = cased.groupby("case")
            summary["by_case"] = {
                c: round(float(v["correct"].astype(bool).mean()), 4) for c, v in cases
            }
            summary["digits_by_case"] = {
                c: round(
                    sum(map(digits_right, v["prediction"], v["label"]))
                    / sum(map(len, v["label"])), 4,
                )
                for c, v in cases
            }  # fmt: skip
    return summary


def report_problems(table: pd.DataFrame, stage: str) -> None:
    for name, error, note in zip(table["file"], table["error"], table["note"], strict=True):
        if error or note:
            print(f"{stage}: {name}: {error or note}")
