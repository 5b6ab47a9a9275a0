"""Transfer to handwriting the model never saw: scikit-learn's UCI digits that neither the scan
benchmark nor the committed samples draw (about 1,200), each rendered as six of the benchmark's
single-digit cases and read by the reader, per recipe and seed, beside MNIST val and test.

Twenty pictures per case in the scan benchmark move 5 points per picture; these 1,200 digits
per case tell recipes apart. They are also not the benchmark's own digits, so choosing a
recipe on them leaves the benchmark a fair test.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from unittest import mock

import numpy as np
from sklearn.datasets import load_digits

from bench.common import REPO, scratch
from bench.training import pipeline, test_accuracy, workspace
from digitpipe import models
from digitpipe.config import compose
from digitpipe.scans import synthetic
from digitpipe.scans.normalise import ScanError, normalize

CASES = ("clean", "thin", "thick", "tiny", "faint_tiny", "shadow")
SEEDS = (42, 1)
FLAG_AND_COARSE = ["train.augment.flagged_ones=0.5", "train.augment.low_resolution=0.3"]
RECIPES = {  # row name: overrides
    "default": [],
    "experiment=scan_robust": ["experiment=scan_robust"],
    "scan_robust + flag 0.5 + low_resolution 0.3": ["experiment=scan_robust", *FLAG_AND_COARSE],
}


def benchmark_digits() -> set[int]:
    """The UCI indices the scan benchmark and the samples draw, found by replaying their
    generators (same seeds) with a digits table that records every index asked for."""
    real, used = load_digits(), set()

    class Recording:
        def __getitem__(self, index):
            used.add(int(index))
            return real.images[index]

    table = mock.Mock(images=Recording(), target=real.target)
    bench = compose(REPO / "conf", []).scans.benchmark
    with mock.patch.object(synthetic, "load_digits", return_value=table):
        synthetic.generate(scratch() / "replayed-benchmark", bench.per_case, bench.seed)
        synthetic.make(scratch() / "replayed-samples")
    return used


def dev_inputs() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per case, the reader's 28x28 inputs of every unused UCI digit (NaN where it found no
    digit: counted wrong), and the labels."""
    digits, used = load_digits(), benchmark_digits()
    keep = [i for i in range(len(digits.target)) if i not in used]
    rng = np.random.default_rng(123)
    inputs = {}
    for case in CASES:
        rows = []
        for index in keep:
            picture = synthetic.CASES[case](digits.images[index], rng).convert("L")
            try:
                rows.append(normalize(np.asarray(picture, np.float32) / 255))
            except ScanError:
                rows.append(np.full((28, 28), np.nan, np.float32))
        inputs[case] = np.stack(rows)
    return inputs, digits.target[keep]


def case_accuracy(model, inputs: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    result = {}
    for case, x in inputs.items():
        found = ~np.isnan(x).any(axis=(1, 2))
        probs = model.predict(np.nan_to_num(x)[..., None], batch_size=512, verbose=0)
        result[case] = float(((np.asarray(probs).argmax(1) == labels) & found).mean())
    return result


def measure() -> tuple[list[list], dict]:
    paths, _ = workspace("full", [])
    inputs, labels = dev_inputs()
    rows, records = [], {"digits": len(labels), "cases": list(CASES), "recipes": {}}
    for name, overrides in RECIPES.items():
        runs = []
        for seed in SEEDS:
            summary, _ = pipeline([*overrides, f"train.seed={seed}"], paths)
            model = models.load(Path(paths.model_file))
            by_case = case_accuracy(model, inputs, labels)
            runs.append({
                "seed": seed, "train_s": summary["train_time_s"],
                "val_accuracy": round(test_accuracy(model, paths, "val"), 4),
                "test_accuracy": round(test_accuracy(model, paths), 4),
                "uci": {c: round(v, 4) for c, v in by_case.items()},
                "uci_mean": round(statistics.mean(by_case.values()), 4),
            })  # fmt: skip
        records["recipes"][name] = runs
        per_seed = " / ".join
        rows.append([
            name, per_seed(str(r["seed"]) for r in runs),
            per_seed(f"{r['train_s']:.0f}" for r in runs),
            per_seed(f"{r['val_accuracy']:.2%}" for r in runs),
            per_seed(f"{r['test_accuracy']:.2%}" for r in runs),
            *(per_seed(f"{r['uci'][c]:.1%}" for r in runs) for c in CASES),
            per_seed(f"{r['uci_mean']:.1%}" for r in runs),
        ])  # fmt: skip
    return rows, records
