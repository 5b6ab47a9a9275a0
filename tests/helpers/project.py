"""Run the project the way a user does: its commands in a throwaway copy, on tiny real MNIST."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tiny_overrides(raw_dir: Path) -> list[str]:
    """Real MNIST shrunk: 3,000 training images, 1,000 test images, one epoch."""
    return [
        f"data.source_dir={raw_dir}",
        "data.train_limit=3000",
        "data.val_size=500",
        "data.test_limit=1000",
        "train.epochs=1",
        "train.batch_size=32",
        "train.verbose=0",
        "scans.benchmark.per_case=2",
    ]


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout=600):
    """Run a command the way a user would, with this venv's tools first on PATH.

    A tracking URI from the caller's shell is dropped, so runs land in the copy's own store.
    """
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env = {**inherited, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    done = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def copy_project(dest: Path) -> Path:
    """The repo's tracked and untracked-but-not-ignored files, in a fresh git repo at `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "mlruns").mkdir(exist_ok=True)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run([*git, "commit", "-q", "-m", "copy"], dest)
    return dest


def store(project: Path) -> str:
    """The tracking URI of a project copy's own SQLite store."""
    return f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
