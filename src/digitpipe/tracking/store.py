"""Where runs are recorded: the tracking URI, the store's one-time set-up, and retries.

A local store is SQLite (`mlruns/mlflow.db`) with its artifacts beside it. Creating or migrating
that database is done once, under a file lock, so parallel jobs never race on the schema. A
tracking server gets MLflow's own short timeouts, so an unreachable URI fails in seconds.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock
from omegaconf import DictConfig

from digitpipe.errors import UserError
from digitpipe.paths import Paths

F = TypeVar("F", bound=Callable[..., Any])

# MLflow's own HTTP settings for a tracking server: fail within seconds, not minutes.
# (MLflow's defaults, 7 retries with backoff 2 and 120 s per try, take ~250 s on a closed port;
# these fail in ~2-6 s there. A user's own values in the environment win.)
SERVER_TIMEOUTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
}
# And quiet: MLflow prints "View run ... at: <url>" each time a stage ends the run, and a
# progress bar for each download; the train stage prints the run's link once instead.
SERVER_QUIET = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# The MLflow 3 experiment kind for training runs (not GenAI). The 3.17 UI decides its landing
# page by `?workflowType=machine_learning` (see `make ui`), but the kind is still recorded.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def is_locked_error(exc: BaseException) -> bool:
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def retry_when_locked(func: F) -> F:
    """Retry an idempotent MLflow call while SQLite reports 'database is locked'."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(8):
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # MlflowException or sqlalchemy OperationalError
                if not is_locked_error(exc) or attempt == 7:
                    raise
                time.sleep(0.25 * 2**attempt)

    return wrapper  # type: ignore[return-value]


def tracking_uri(cfg: DictConfig, paths: Paths) -> str:
    """MLFLOW_TRACKING_URI wins, then mlflow.tracking_uri, then the project's SQLite store."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env or cfg.mlflow.tracking_uri or paths.default_tracking_uri


def local_database(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def lock_for(paths: Paths, name: str) -> FileLock:
    """A lock shared by every process of this clone (sweeps, parallel jobs, DVC queue)."""
    paths.locks_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(paths.locks_dir / f"{name}.lock"))


@functools.cache
def _experiment_id(uri: str, experiment_name: str, locks_dir: str) -> str:
    """Once per process and store: create (or migrate) the store and the experiment."""
    from mlflow.tracking import MlflowClient

    location = None  # a tracking server decides where artifacts go
    if database := local_database(uri):
        database.parent.mkdir(parents=True, exist_ok=True)
        location = (database.parent / "artifacts").as_uri()
    try:
        with FileLock(str(Path(locks_dir) / "store.lock")):  # one creator/migrator at a time
            client = MlflowClient()
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                return client.create_experiment(
                    experiment_name, artifact_location=location, tags=EXPERIMENT_KIND
                )
            if experiment.tags.get("mlflow.experimentKind") is None:
                for key, value in EXPERIMENT_KIND.items():
                    client.set_experiment_tag(experiment.experiment_id, key, value)
            return experiment.experiment_id
    except Exception as exc:
        if local_database(uri) is not None and is_locked_error(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"mlflow: tracking store {uri} is not usable: {first[:200]}") from None


def configure(cfg: DictConfig, paths: Paths) -> str:
    """Point MLflow at the store (creating/migrating it once) and return the experiment id."""
    import mlflow

    # "Creating initial MLflow database tables..." on every new store: MLflow's news, not ours
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    paths.locks_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(cfg, paths)
    if local_database(uri) is None:
        for key, value in SERVER_TIMEOUTS.items():
            os.environ.setdefault(key, value)
    if uri.startswith(("http://", "https://")):
        for key, value in SERVER_QUIET.items():
            os.environ.setdefault(key, value)
    mlflow.set_tracking_uri(uri)
    return retry_when_locked(_experiment_id)(uri, cfg.mlflow.experiment_name, str(paths.locks_dir))


def run_link(run_id: str, experiment_id: str) -> str | None:
    """The run's page on a tracking server (the UI's own address for it); None for a local
    store, whose UI (`make ui`) is not running unless asked for."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
