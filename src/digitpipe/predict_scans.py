"""Stage predict-scans: classify real scans/photos of handwritten digits.

One picture may hold one digit or a written number ("2026"): it is read left to right, each digit
with its confidence; the picture's confidence is its least sure digit, and below
`scans.min_confidence` the reading is flagged as unsure. A file that cannot give a digit becomes
an error row; every other file is still predicted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from digitpipe import plots, scanprep, tracking
from digitpipe.errors import UserError
from digitpipe.paths import Paths
from digitpipe.stage import run_stage

COLUMNS = [
    "file",
    "prediction",
    "confidence",
    "accepted",
    "digits",
    "label",
    "correct",
    "case",
    "error",
]
CHUNK = 256  # pictures normalised and predicted at a time: memory stays bounded
POOL_FROM = 400  # from this many pictures on, normalise in worker processes (start-up ~2 s)


def list_images(folder: Path) -> list[Path]:
    """Every file with an image extension below `folder`, in a stable order."""
    if not folder.is_dir():
        raise UserError(f"scans.dir: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in scanprep.IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"scans.dir: no images (PNG, JPEG, BMP, TIFF) in {folder}")
    return files


def read_labels(folder: Path, labels_file: str | None) -> dict[str, tuple[str, str]]:
    """{relative file name: (label, case)} from an optional CSV with columns file,label[,case]."""
    if not labels_file or not (folder / labels_file).is_file():
        return {}
    path = folder / labels_file
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        cases = table["case"] if "case" in table else [""] * len(table)
        labels = {
            f: (str(lab).strip(), c)
            for f, lab, c in zip(table["file"], table["label"], cases, strict=True)
        }
    except (KeyError, ValueError) as exc:
        raise UserError(f"{path}: needs columns file,label (and optionally case): {exc}") from None
    bad = [f for f, (lab, _) in labels.items() if not lab.isdigit()]
    if bad:
        raise UserError(f"{path}: label of {bad[0]!r} is not made of digits")
    return labels


def load_model(cfg: DictConfig, paths: Paths):
    """The pipeline's own model, or the one named by scans.model_uri (e.g. models:/x@champion)."""
    if not cfg.scans.model_uri:
        from digitpipe import models

        return models.load(paths.model_file)
    return tracking.load_keras_model(cfg, paths, cfg.scans.model_uri)


def read_chunk(
    model, files: list[Path], split: bool, thumbnails_wanted: int, pool: Executor | None = None
) -> list[dict]:
    """Per file: its digits' 28x28 inputs, predictions and confidences, or an error."""
    wanted = [k < thumbnails_wanted for k in range(len(files))]
    splits = [split] * len(files)
    args = (scanprep.read_digits, files, splits, wanted)
    read = pool.map(*args, chunksize=16) if pool is not None else map(*args)
    results = [{"inputs": inputs, "thumb": thumb, "error": error} for inputs, thumb, error in read]
    batch = [x for r in results for x in r["inputs"]]
    probs = model.predict(np.stack(batch)[..., None], batch_size=CHUNK, verbose=0) if batch else []
    at = 0
    for r in results:
        n = len(r["inputs"])
        r["digits"] = [(int(p.argmax()), float(p.max())) for p in probs[at : at + n]]
        at += n
    return results


def worker_pool(files: int) -> Executor | None:
    """Processes for normalising a big folder on every core (not worth starting for a few)."""
    cores = os.cpu_count() or 1
    if files < POOL_FROM or cores < 2:
        return None
    return ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn"))


def row(name: str, result: dict, labels: dict, min_confidence: float) -> tuple:
    label, case = labels.get(name, (None, ""))
    if result["error"]:
        return (
            name,
            None,
            None,
            False,
            "",
            label,
            None if label is None else False,
            case,
            result["error"],
        )
    digits = result["digits"]
    prediction = "".join(str(d) for d, _ in digits)
    confidence = round(min(c for _, c in digits), 4)
    per_digit = " ".join(f"{d}:{c:.2f}" for d, c in digits) if len(digits) > 1 else ""
    correct = None if label is None else prediction == label
    return (
        name,
        prediction,
        confidence,
        confidence >= min_confidence,
        per_digit,
        label,
        correct,
        case,
        "",
    )


def summarise(table: pd.DataFrame) -> dict:
    """Counts, accuracy overall and on accepted readings, acceptance rate, accuracy per case."""
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
        cases = labelled[labelled["case"] != ""].groupby("case")["correct"]
        if len(cases):
            summary["by_case"] = {c: round(float(v.astype(bool).mean()), 4) for c, v in cases}
    return summary


def caption(name: str, row_values: tuple) -> str:
    _, prediction, confidence, accepted, _, label, correct, _, error = row_values
    if error:
        return f"{name}\nERROR: {error[:28]}"
    unsure = "" if accepted else "?"
    mark = "" if label is None else (" ✓" if correct else f" ✗ ({label})")
    return f"{name}\n→ {prediction}{unsure} ({confidence:.2f}){mark}"


def run(cfg: DictConfig, paths: Paths, out_dir: Path | None = None, model=None) -> dict:
    """Read every picture of scans.dir; `model` (default: load_model) may be passed in by a
    caller that needs it again afterwards, so it is loaded once."""
    folder = paths.resolve_user_path(cfg.scans.dir)
    files = list_images(folder)
    labels = read_labels(folder, cfg.scans.labels_file)
    model = model if model is not None else load_model(cfg, paths)
    out = out_dir or paths.scans_out_dir

    rows, gallery_rows = [], []
    pool = worker_pool(len(files))
    with pool or nullcontext():
        for start in range(0, len(files), CHUNK):
            chunk = files[start : start + CHUNK]
            wanted = max(0, cfg.scans.gallery_max - len(gallery_rows))
            results = read_chunk(model, chunk, cfg.scans.split_digits, wanted, pool)
            for path, result in zip(chunk, results, strict=True):
                name = path.relative_to(folder).as_posix()
                values = row(name, result, labels, cfg.scans.min_confidence)
                rows.append(values)
                if len(gallery_rows) < cfg.scans.gallery_max:
                    inputs = result["inputs"]
                    shown = np.concatenate(inputs, axis=1) if inputs else None
                    gallery_rows.append((result["thumb"], shown, caption(name, values)))
            if len(files) > CHUNK:
                print(f"predict-scans: {min(start + CHUNK, len(files))}/{len(files)} images")
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"correct": "boolean"})
    summary = summarise(table)

    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "predictions.csv", index=False)
    (out / "metrics.json").write_text(json.dumps({"scans": summary}, indent=2) + "\n")
    accuracy = f", accuracy {summary['accuracy']:.1%}" if "accuracy" in summary else ""
    title = f"Scans: {summary['images']} images{accuracy} ('?' = below {cfg.scans.min_confidence})"
    gallery = plots.scan_gallery(gallery_rows, out / "gallery.png", title)

    if paths.run_file.is_file():
        with tracking.resume_pipeline_run(cfg, paths):
            prefix = "scan" if out_dir is None else out.name.replace("-", "_")
            metrics = {f"{prefix}_images": summary["images"], f"{prefix}_errors": summary["errors"]}
            for key in ("accuracy", "accepted_accuracy", "acceptance_rate"):
                if key in summary:
                    metrics[f"{prefix}_{key}"] = summary[key]
            for case, value in summary.get("by_case", {}).items():
                metrics[f"{prefix}_accuracy_{case}"] = value
            tracking.log_metrics(metrics)
            tracking.log_files(
                out / "predictions.csv", out / "metrics.json", gallery, folder=out.name
            )
    for name, error in zip(table["file"], table["error"], strict=True):
        if error:
            print(f"predict-scans: {name}: {error}")
    print(f"predict-scans: {summary['images']} images, {summary['errors']} errors{accuracy}")
    return summary


if __name__ == "__main__":
    run_stage(run)
