"""Jobs per minute of the same tiny 4-job sweep with the basic, joblib and Ray launchers."""

from __future__ import annotations

import time

from bench.common import REPO, scratch, timed
from bench.overhead import project_copy

LAUNCHERS = {
    "basic (one after another)": [],
    "joblib, 2 processes": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "Ray (local, 1 CPU per job)": ["hydra/launcher=ray_jobs"],
}


def measure() -> tuple[list[list], dict]:
    project = project_copy()
    tiny = [
        f"data.source_dir={REPO / 'data' / 'raw'}",
        "data.train_limit=3000",
        "data.val_size=500",
        "data.test_limit=1000",
        "train.epochs=1",
        "train.verbose=0",
        "scans.benchmark.per_case=2",
        "model=seed_blog_cnn,seed_lab_cnn",
        "train.seed=1,2",
    ]
    rows, results = [], {}
    for name, launcher in LAUNCHERS.items():
        sweep_dir = scratch() / f"sweep-{int(time.time() * 1000)}"
        command = ["python", "-m", "digitpipe.commands.sweep", "-m", *launcher, *tiny,
                   f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
        seconds, done = timed(command, project)
        if done.returncode != 0:
            raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
        per_minute = 4 * 60 / seconds
        rows.append([name, f"{seconds:.0f} s", f"{per_minute:.1f}"])
        results[name] = {"wall_s": round(seconds, 1), "jobs_per_min": round(per_minute, 2)}
    return rows, results
