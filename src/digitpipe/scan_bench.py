"""The scan benchmark: hard cases of real handwriting, generated reproducibly, and how the
pipeline (and, for comparison, the naive recipe) reads them.

Cases: clean, shadow (phone photo, uneven light), lined and grid paper, thick (marker) and thin
(pencil) strokes, inverted (chalk on a board), tiny and huge digits, and multi-digit numbers.
The handwriting is scikit-learn's UCI digits (43 writers, not MNIST).

    python -m digitpipe.scan_bench          # DVC stage scan-benchmark
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from PIL import Image
from sklearn.datasets import load_digits

from digitpipe import predict_scans, scanprep
from digitpipe.paths import Paths
from digitpipe.sample_scans import on_paper, place, strokes
from digitpipe.stage import run_stage

Rng = np.random.Generator


def ruled(height: int, width: int, rng: Rng, grid: bool) -> np.ndarray:
    """Printed lines every few millimetres: 1 on the lines, 0 elsewhere."""
    lines = np.zeros((height, width), dtype=np.float32)
    gap = int(rng.integers(18, 30))
    lines[int(rng.integers(0, gap)) :: gap, :] = 1
    if grid:
        lines[:, int(rng.integers(0, gap)) :: gap] = 1
    return lines


def single(digit8, rng: Rng, size: int, page: tuple[int, int], pen: int = 0, **paper):
    ink = strokes(digit8, size, rng, pen)
    return on_paper(place(ink, *page, rng), rng, **paper)


def case_clean(d, rng):
    return single(d, rng, 60, (110, 100))


def case_shadow(d, rng):
    return single(d, rng, 70, (160, 140), shadow=rng.uniform(0.5, 0.7))


def case_lined(d, rng):
    return single(d, rng, 70, (130, 120), lines=ruled(130, 120, rng, grid=False))


def case_grid(d, rng):
    return single(d, rng, 70, (130, 120), lines=ruled(130, 120, rng, grid=True))


def case_thick(d, rng):
    return single(d, rng, 70, (120, 110), pen=4)


def case_thin(d, rng):
    return single(d, rng, 90, (140, 130), pen=-2, pen_tone=(0.35, 0.55))


def case_inverted(d, rng):
    return single(d, rng, 60, (110, 100), inverted=True)


def case_tiny(d, rng):
    return single(d, rng, 14, (220, 200))


def case_huge(d, rng):
    return single(d, rng, 1400, (1600, 1500))


CASES: dict[str, Callable] = {
    "clean": case_clean,
    "shadow": case_shadow,
    "lined": case_lined,
    "grid": case_grid,
    "thick": case_thick,
    "thin": case_thin,
    "inverted": case_inverted,
    "tiny": case_tiny,
    "huge": case_huge,
}


def number(digits8: list, rng: Rng) -> Image.Image:
    """A written number: digits side by side with uneven gaps (sometimes touching)."""
    size = 60
    inks = [strokes(d, size, rng) for d in digits8]
    crops = []
    for ink in inks:
        columns = np.flatnonzero(ink.max(0) > 0.3)
        crops.append(ink[:, columns[0] : columns[-1] + 1])
    gaps = [int(rng.integers(-2, 14)) for _ in crops]
    width = sum(c.shape[1] for c in crops) + sum(max(g, 0) for g in gaps) + 40
    row = np.zeros((size, width), dtype=np.float32)
    x = 20
    for crop, gap in zip(crops, gaps, strict=True):
        row[:, x : x + crop.shape[1]] = np.maximum(row[:, x : x + crop.shape[1]], crop)
        x += crop.shape[1] + gap
    row = row[:, : max(x + 20, 1)]
    return on_paper(place(row, size + 50, row.shape[1] + 30, rng), rng)


def generate(out: Path, per_case: int, seed: int) -> pd.DataFrame:
    """Write the benchmark pictures and labels.csv (file,label,case)."""
    rng = np.random.default_rng(seed)
    digits = load_digits()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for case, draw in CASES.items():
        for k in range(per_case):
            label = k % 10
            index = rng.choice(np.flatnonzero(digits.target == label))
            name = f"{case}_{k:02d}.png"
            draw(digits.images[index], rng).save(out / name)
            rows.append({"file": name, "label": str(label), "case": case})
    for k in range(per_case):
        length = int(rng.integers(2, 5))
        labels = rng.integers(0, 10, size=length)
        pictures = [digits.images[rng.choice(np.flatnonzero(digits.target == d))] for d in labels]
        name = f"multi_{k:02d}.png"
        number(pictures, rng).save(out / name)
        rows.append({"file": name, "label": "".join(map(str, labels)), "case": "multi"})
    table = pd.DataFrame(rows)
    table.to_csv(out / "labels.csv", index=False)
    return table


def naive_accuracy(model, folder: Path, labels: pd.DataFrame) -> dict[str, float]:
    """The naive recipe per case: whole picture resized to 28x28, grayscale, inverted."""
    inputs = [scanprep.naive(scanprep.load_gray(folder / f)) for f in labels["file"]]
    probs = model.predict(np.stack(inputs)[..., None], batch_size=256, verbose=0)
    right = pd.Series(probs.argmax(1).astype(str) == labels["label"].to_numpy())
    return {c: round(float(v.mean()), 4) for c, v in right.groupby(labels["case"].to_numpy())}


def run(cfg: DictConfig, paths: Paths) -> dict:
    bench = cfg.scans.benchmark
    folder = paths.resolve_user_path(bench.dir)
    labels = generate(folder, bench.per_case, bench.seed)
    bench_cfg = cfg.copy()
    bench_cfg.scans.dir = str(folder)
    bench_cfg.scans.labels_file = "labels.csv"
    model = predict_scans.load_model(cfg, paths)
    summary = predict_scans.run(bench_cfg, paths, out_dir=paths.scan_bench_out_dir, model=model)
    naive = naive_accuracy(model, folder, labels)
    summary["naive_by_case"] = naive
    summary["naive_accuracy"] = round(float(np.mean([naive[c] for c in labels["case"]])), 4)
    metrics_file = paths.scan_bench_out_dir / "metrics.json"
    metrics_file.write_text(json.dumps({"scan_bench": summary}, indent=2) + "\n")
    print("scan-benchmark: case      pipeline  naive")
    for case, value in summary.get("by_case", {}).items():
        print(f"scan-benchmark: {case:9s} {value:8.1%}  {naive.get(case, 0):5.1%}")
    return summary


if __name__ == "__main__":
    run_stage(run)
