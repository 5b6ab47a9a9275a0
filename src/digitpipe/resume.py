"""An interrupted training continues where it stopped, and only as the same training.

The backup folder (Keras's BackupAndRestore checkpoint, the per-epoch history and the MLflow
run's id) is marked with a fingerprint of the config: a changed config starts afresh, and the
run it leaves behind is superseded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from digitpipe import tracking
from digitpipe.config import prepared_data
from digitpipe.errors import UserError
from digitpipe.paths import Paths


def fingerprint(cfg: DictConfig) -> str:
    """What a backup belongs to: a changed config must not resume an old run's weights."""
    used = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "train")}
    used["data"] = prepared_data(cfg)  # not where MNIST came from: the same files, verified
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()


def backup_is_for(cfg: DictConfig, paths: Paths) -> bool:
    """Whether the backup folder belongs to a training of this very config."""
    marker = paths.backup_dir / "fingerprint"
    return marker.is_file() and marker.read_text() == fingerprint(cfg)


def mark_backup(cfg: DictConfig, paths: Paths, name: str, content: str) -> None:
    """Write `name` into the backup folder, marked as this config's."""
    paths.backup_dir.mkdir(parents=True, exist_ok=True)
    (paths.backup_dir / "fingerprint").write_text(fingerprint(cfg))
    (paths.backup_dir / name).write_text(content)


def resumable_run_id(cfg: DictConfig, paths: Paths) -> str | None:
    """The MLflow run of an interrupted training of this very config, if one can resume.

    Everything a resume needs lives in the backup folder: DVC deletes a stage's outs before
    running it again, so the run file and history in outputs/train/ may be gone.
    """
    recorded = backup_run_id(paths)
    if cfg.train.resume and backup_is_for(cfg, paths):
        return recorded  # None: killed before its run was recorded; attempt_key finds the run
    shutil.rmtree(paths.backup_dir, ignore_errors=True)
    if recorded is not None:  # a killed training of another config: it will never resume
        tracking.configure(cfg, paths)
        tracking.supersede_unfinished(recorded)
    return None


def backup_run_id(paths: Paths) -> str | None:
    try:
        return json.loads(paths.backup_run_file.read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return None


def attempt_key(cfg: DictConfig, paths: Paths) -> str:
    """This training's key, written down before its MLflow run exists and tagged on the run.

    A training killed between opening its run and recording it (a sweep's worker killed
    mid-start) is found again by this key, instead of leaving an orphan beside a new run.
    """
    key_file = paths.backup_dir / "attempt"
    if key_file.is_file() and backup_is_for(cfg, paths):
        return key_file.read_text()
    key = uuid.uuid4().hex
    mark_backup(cfg, paths, "attempt", key)
    return key


def prepare_backup(cfg: DictConfig, paths: Paths, run_id: str) -> None:
    """Mark the backup folder with this config and run, so a rerun knows what it may resume."""
    mark_backup(cfg, paths, paths.backup_run_file.name, json.dumps({"run_id": run_id}))


def owned_train_dir(paths: Paths) -> FileLock:
    """The training folder belongs to one live process: a second one (a colliding sweep job)
    stops instead of adopting its backup. The lock dies with its process."""
    paths.train_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.train_dir / ".owner.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"{paths.train_dir}: in use by another running training") from None
    return lock


def live_history(paths: Paths, train_cfg: DictConfig) -> Path:
    """Where the per-epoch CSV grows during training (inside the backup when resumable)."""
    return paths.backup_dir / "history.csv" if train_cfg.resume else paths.history_file


def trim_history(paths: Paths, train_cfg: DictConfig) -> None:
    """On resume, keep only the epochs the backup holds: an epoch cut short is done again."""
    history = live_history(paths, train_cfg)
    metadata = paths.backup_dir / "checkpoint" / "training_metadata.json"
    if not history.is_file() or not metadata.is_file():
        return
    done = json.loads(metadata.read_text())["epoch"]
    lines = history.read_text().splitlines(keepends=True)
    history.write_text("".join(lines[: 1 + done]))  # header + one row per finished epoch
