"""Stage scan-benchmark: hard cases of real handwriting (scans/synthetic.py), generated
reproducibly, read by the pipeline and, for comparison, by the naive recipe.

The handwriting is scikit-learn's UCI digits (43 writers, not MNIST). One writer of
outputs/scan-benchmark/metrics.json: per-case accuracy of the pipeline and of the naive recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from digitpipe import plots
from digitpipe.paths import Paths
from digitpipe.scans import normalise, read, results, synthetic
from digitpipe.stages import run_stage

if TYPE_CHECKING:
    import keras

GALLERY_PER_CASE = 3


def naive_accuracy(model: keras.Model, folder: Path, labels: pd.DataFrame) -> dict[str, float]:
    """The naive recipe per case: whole picture resized to 28x28, grayscale, inverted."""
    inputs = [normalise.naive(normalise.load_gray(folder / f)) for f in labels["file"]]
    probs = model.predict(np.stack(inputs)[..., None], batch_size=256, verbose=0)
    right = pd.Series(probs.argmax(1).astype(str) == labels["label"].to_numpy())
    return {c: round(float(v.mean()), 4) for c, v in right.groupby(labels["case"].to_numpy())}


def run(cfg: DictConfig, paths: Paths) -> dict:
    bench, s = cfg.scans.benchmark, cfg.scans
    folder = paths.resolve_output_path(bench.dir)
    model, source = results.load_model(cfg, paths)  # a bad model_uri: nothing written
    labels = synthetic.generate(folder, bench.per_case, bench.seed)
    table, gallery = read.read_folder(
        model, folder, "labels.csv", s.split_digits, s.min_confidence,
        gallery_pick=read.FewPerCase(GALLERY_PER_CASE), stage="scan-benchmark",
    )  # fmt: skip
    summary = read.summarise(table) | source
    naive = naive_accuracy(model, folder, labels)
    summary["naive_by_case"] = naive
    summary["naive_accuracy"] = round(float(np.mean([naive[c] for c in labels["case"]])), 4)

    out = paths.scan_benchmark_out_dir
    files = results.write(out, table, summary, "scan_benchmark")
    cases = labels["case"].nunique()
    title = (
        f"Scan benchmark: {len(gallery)} of {summary['images']} shown "
        f"({min(GALLERY_PER_CASE, bench.per_case)} of each "
        f"of {cases} cases), accuracy {summary.get('accuracy', 0):.1%}"
    )
    files.append(plots.scan_gallery(gallery, out / "gallery.png", title))
    metrics = results.mlflow_metrics(summary, "scan_benchmark")
    metrics |= {f"scan_benchmark_naive_accuracy_{c}": v for c, v in naive.items()}
    metrics["scan_benchmark_naive_accuracy"] = summary["naive_accuracy"]
    keys = ("scans.benchmark.dir", "scans.benchmark.per_case", "scans.benchmark.seed")
    keys += ("scans.split_digits", "scans.min_confidence")
    results.log_results(cfg, paths, "scan-benchmark", keys, metrics, files, source.get("model"))
    print("scan-benchmark: case         pipeline   digits   naive")
    digits = summary.get("digits_by_case", {})
    for case, value in summary.get("by_case", {}).items():
        shown = f"{value:8.1%}  {digits.get(case, 0):7.1%}  {naive.get(case, 0):6.1%}"
        print(f"scan-benchmark: {case:12s} {shown}")
    overall = f"{summary.get('accuracy', 0):8.1%}  {'':7s}  {summary['naive_accuracy']:6.1%}"
    print(f"scan-benchmark: {'all ' + str(summary['images']):12s} {overall}")
    return summary


if __name__ == "__main__":
    run_stage(run)
