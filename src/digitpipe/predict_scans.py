"""Stage predict-scans: classify real scans/photos of handwritten digits.

A file that cannot give a digit becomes an error row; every other file is still predicted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from PIL import Image

from digitpipe import plots, scanprep, tracking
from digitpipe.config import load_params
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths

COLUMNS = ["file", "prediction", "confidence", "label", "correct", "error"]


def list_images(folder: Path) -> list[Path]:
    """Every file with an image extension below `folder`, in a stable order."""
    if not folder.is_dir():
        raise UserError(f"scans.dir: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in scanprep.IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"scans.dir: no images (PNG, JPEG, BMP, TIFF) in {folder}")
    return files


def read_labels(folder: Path, labels_file: str | None) -> dict[str, int]:
    """{relative file name: digit} from an optional CSV with columns file,label."""
    if not labels_file or not (folder / labels_file).is_file():
        return {}
    path = folder / labels_file
    try:
        table = pd.read_csv(path, dtype={"file": str})
        return {str(f): int(label) for f, label in zip(table["file"], table["label"], strict=True)}
    except (KeyError, ValueError) as exc:
        raise UserError(f"{path}: needs columns file,label with digits 0-9 ({exc})") from None


def load_model(cfg: DictConfig, paths: Paths):
    """The pipeline's own model, or the one named by scans.model_uri (e.g. models:/x@champion)."""
    if not cfg.scans.model_uri:
        from digitpipe import models

        return models.load(paths.model_file)
    return tracking.load_keras_model(cfg, paths, cfg.scans.model_uri)


def normalise_all(files: list[Path], folder: Path):
    """(inputs, thumbnails, errors) per file; an unusable file gets an error, never an input."""
    inputs, thumbs, errors = [], [], []
    for path in files:
        try:
            gray = scanprep.load_gray(path)
            inputs.append(scanprep.normalize(gray))
            thumbs.append(
                np.asarray(Image.fromarray((gray * 255).astype(np.uint8)).resize((56, 56)))
            )
            errors.append("")
        except scanprep.ScanError as exc:
            inputs.append(None)
            thumbs.append(None)
            errors.append(str(exc))
    return inputs, thumbs, errors


def predict(model, inputs: list[np.ndarray | None]) -> tuple[list, list]:
    ok = [i for i, x in enumerate(inputs) if x is not None]
    predictions: list = [None] * len(inputs)
    confidences: list = [None] * len(inputs)
    if ok:
        batch = np.stack([inputs[i] for i in ok])[..., np.newaxis]
        probs = model.predict(batch, batch_size=256, verbose=0)
        for i, p in zip(ok, probs, strict=True):
            predictions[i], confidences[i] = int(p.argmax()), round(float(p.max()), 4)
    return predictions, confidences


def summarise(table: pd.DataFrame) -> dict:
    labelled = table[table["label"].notna() & (table["error"] == "")]
    summary = {
        "images": int(len(table)),
        "errors": int((table["error"] != "").sum()),
        "labelled": int(len(labelled)),
    }
    if len(labelled):
        summary["accuracy"] = round(float(labelled["correct"].astype(bool).mean()), 4)
    return summary


def run(cfg: DictConfig, paths: Paths) -> dict:
    folder = paths.resolve_user_path(cfg.scans.dir)
    files = list_images(folder)
    labels = read_labels(folder, cfg.scans.labels_file)
    model = load_model(cfg, paths)
    inputs, thumbs, errors = normalise_all(files, folder)
    predictions, confidences = predict(model, inputs)

    names = [p.relative_to(folder).as_posix() for p in files]
    label_col = [labels.get(n) for n in names]
    table = pd.DataFrame(
        {
            "file": names,
            "prediction": pd.array(predictions, dtype="Int64"),
            "confidence": confidences,
            "label": pd.array(label_col, dtype="Int64"),
            "correct": [
                None if lab is None or pred is None else bool(lab == pred)
                for lab, pred in zip(label_col, predictions, strict=True)
            ],
            "error": errors,
        },
        columns=COLUMNS,
    )
    summary = summarise(table)

    out = paths.scans_out_dir
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "predictions.csv", index=False)
    (out / "metrics.json").write_text(json.dumps({"scans": summary}, indent=2) + "\n")
    rows = []
    for k in range(min(len(files), cfg.scans.gallery_max)):
        if errors[k]:
            caption = f"{names[k]}\nERROR"
        else:
            mark = (
                ""
                if label_col[k] is None
                else (" ✓" if table["correct"][k] else f" ✗ ({label_col[k]})")
            )
            caption = f"{names[k]}\n→ {predictions[k]} ({confidences[k]:.2f}){mark}"
        rows.append((thumbs[k], inputs[k], caption))
    accuracy = f", accuracy {summary['accuracy']:.1%}" if "accuracy" in summary else ""
    gallery = plots.scan_gallery(
        rows, out / "gallery.png", f"Scans: {summary['images']} images{accuracy}"
    )

    if paths.run_file.is_file():
        with tracking.resume_pipeline_run(cfg, paths):
            metrics = {"scan_images": summary["images"], "scan_errors": summary["errors"]}
            if "accuracy" in summary:
                metrics["scan_accuracy"] = summary["accuracy"]
            tracking.log_metrics(metrics)
            tracking.log_files(
                out / "predictions.csv", out / "metrics.json", gallery, folder="scans"
            )
    for name, error in zip(names, errors, strict=True):
        if error:
            print(f"predict-scans: {name}: {error}")
    print(f"predict-scans: {summary['images']} images, {summary['errors']} errors{accuracy}")
    return summary


@cli
def main() -> None:
    paths = Paths.here()
    run(load_params(paths.params_file), paths)


if __name__ == "__main__":
    main()
