"""Transfer to handwriting the model never saw: scikit-learn's UCI digits that neither the scan
benchmark nor the committed samples draw (about 1,200), each rendered as six of the benchmark's
single-digit cases and read as the benchmark is read (files, `read_folder`), per recipe and seed,
beside MNIST val and test.

Twenty pictures per case in the scan benchmark move 5 points per picture; these 1,200 digits
per case tell recipes apart. They are also not the benchmark's own digits, so choosing a
recipe on them leaves the benchmark a fair test.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from bench.common import REPO, scratch
from bench.training import pipeline, test_accuracy, workspace
from digitpipe import models
from digitpipe.config import compose
from digitpipe.scans import read, synthetic

CASES = ("clean", "thin", "thick", "tiny", "faint_tiny", "shadow")
SEEDS = (42, 1)
RECIPES = {  # row name: overrides
    "default": [],
    "default + coarse 0.3": ["train.coarse_digits=0.3"],
    "scan_robust before (scan-like augmentation, no coarse)": [
        "experiment=scan_robust",
        "train.augment.enabled=true",
        "train.coarse_digits=0",
    ],
    "experiment=scan_robust (coarse 0.3)": ["experiment=scan_robust"],
    "scan_robust with coarse 0.5": ["experiment=scan_robust", "train.coarse_digits=0.5"],
    "scan_robust 20 epochs": ["experiment=scan_robust", "train.epochs=20"],
    "experiment=best + coarse 0.3": ["experiment=best", "train.coarse_digits=0.3"],
    "scan_robust + flagged ones 0.5 only": [
        "experiment=scan_robust",
        "train.augment.enabled=true",
        "train.augment.flagged_ones=0.5",
        *(
            f"train.augment.{k}=0"
            for k in ("thickness", "elastic", "blur", "noise", "rotation_deg", "shift", "zoom")
        ),
    ],
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


def dev_folder() -> Path:
    """Every unused UCI digit rendered as each case, written as the benchmark's pictures are,
    with a labels.csv (file,label,case): read by the same reader the benchmark stage uses."""
    digits, used = load_digits(), benchmark_digits()
    folder = scratch() / "unseen-uci"
    folder.mkdir(parents=True, exist_ok=True)
    rng, rows = np.random.default_rng(123), []
    for case in CASES:
        for index in (i for i in range(len(digits.target)) if i not in used):
            name = f"{case}_{index:04d}.png"
            synthetic.CASES[case](digits.images[index], rng).save(folder / name)
            rows.append({"file": name, "label": str(digits.target[index]), "case": case})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder


def case_accuracy(model, folder: Path) -> dict[str, float]:
    table, _ = read.read_folder(model, folder, "labels.csv", True, 0.5, lambda name, case: False)
    return read.summarise(table)["by_case"]


def measure() -> tuple[list[list], dict]:
    paths, _ = workspace("full", [])
    folder = dev_folder()
    digits = len(pd.read_csv(folder / "labels.csv")) // len(CASES)
    rows, records = [], {"digits": digits, "cases": list(CASES), "recipes": {}}
    for name, overrides in RECIPES.items():
        runs = []
        for seed in SEEDS:
            summary, _ = pipeline([*overrides, f"train.seed={seed}"], paths)
            model = models.load(Path(paths.model_file))
            by_case = case_accuracy(model, folder)
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


def in_domain() -> tuple[list[list], dict]:
    """How well UCI's digits can be read at all: a support-vector classifier trained on UCI's own
    8x8 grids (no picture, no reader), held-out folds contiguous (in file order: where the file
    keeps a writer's digits together, mostly other writers; the gap to shuffled folds suggests
    it does) or shuffled (the same writers on both sides); and how often a 10-digit form row of
    them would be right (mean ** 10)."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.svm import SVC

    digits = load_digits()
    rows, records = [], {}
    for name, folds in (("2 contiguous folds", KFold(2)), ("5 contiguous folds", KFold(5)),
                        ("5 shuffled folds", KFold(5, shuffle=True, random_state=0))):  # fmt: skip
        scores = cross_val_score(SVC(gamma=0.001, C=10), digits.data, digits.target, cv=folds)
        mean = float(scores.mean())
        records[name] = [round(float(x), 4) for x in scores]
        rows.append(
            [name, " / ".join(f"{x:.1%}" for x in scores), f"{mean:.1%}", f"{mean**10:.0%}"]
        )
    return rows, records
