"""The one place that talks to MLflow.

One pipeline run is one MLflow run: train opens it and writes its id to `Paths.run_file`;
evaluate and predict-scans reopen the same run from that file. A sweep gets one parent run,
created before the jobs fan out; each job's run is its child.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from digitpipe.config import flatten, run_name
from digitpipe.errors import UserError
from digitpipe.paths import Paths

F = TypeVar("F", bound=Callable[..., Any])
CHAMPION = "champion"


def retry_when_locked(func: F) -> F:
    """Retry an MLflow call while SQLite reports 'database is locked' (parallel sweep jobs)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(8):
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # MlflowException or sqlalchemy OperationalError
                if "locked" not in str(exc) or attempt == 7:
                    raise
                time.sleep(0.25 * 2**attempt)

    return wrapper  # type: ignore[return-value]


def tracking_uri(cfg: DictConfig, paths: Paths) -> str:
    """MLFLOW_TRACKING_URI wins, then mlflow.tracking_uri, then the project's SQLite store."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env or cfg.mlflow.tracking_uri or paths.default_tracking_uri


@retry_when_locked
def configure(cfg: DictConfig, paths: Paths) -> str:
    """Point MLflow at the store (creating/migrating it) and make sure the experiment exists."""
    uri = tracking_uri(cfg, paths)
    location = None  # a tracking server decides where artifacts go
    if uri.startswith("sqlite:///"):  # a local store keeps its artifacts beside its database
        database = Path(uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        location = (database.parent / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    name = cfg.mlflow.experiment_name
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel job
        return client.get_experiment_by_name(name).experiment_id


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


@contextlib.contextmanager
def start_pipeline_run(
    cfg: DictConfig,
    paths: Paths,
    tags: dict[str, str] | None = None,
    resume_run_id: str | None = None,
    parent_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Open the run of a new pipeline run (or reopen an interrupted one), log the whole config,
    and record the run id for the later stages."""
    experiment_id = configure(cfg, paths)
    if resume_run_id is not None:
        with retry_when_locked(mlflow.start_run)(run_id=resume_run_id) as run:
            write_run_file(paths, run.info.run_id, experiment_id)
            yield run
        return
    run_tags = {
        "architecture": cfg.model.name,
        "epochs": str(cfg.train.epochs),
        "git_commit": git_commit(paths.root),
        **(tags or {}),
    }
    with retry_when_locked(mlflow.start_run)(
        experiment_id=experiment_id,
        run_name=run_name(cfg),
        tags=run_tags,
        parent_run_id=parent_run_id,
    ) as run:
        retry_when_locked(mlflow.log_params)(flatten(cfg))
        mlflow.log_text(OmegaConf.to_yaml(cfg), "config/params.yaml")
        write_run_file(paths, run.info.run_id, experiment_id)
        yield run


def write_run_file(paths: Paths, run_id: str, experiment_id: str) -> None:
    paths.run_file.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tracking_uri": mlflow.get_tracking_uri(),
    }
    paths.run_file.write_text(json.dumps(record, indent=2) + "\n")


@contextlib.contextmanager
def resume_pipeline_run(cfg: DictConfig, paths: Paths) -> Iterator[mlflow.ActiveRun]:
    """Reopen the run that train started, so every stage logs into one MLflow run."""
    try:
        record = json.loads(paths.run_file.read_text())
    except (OSError, ValueError):
        raise UserError(f"{paths.run_file}: no MLflow run recorded (run the train stage)") from None
    configure(cfg, paths)
    with retry_when_locked(mlflow.start_run)(run_id=record["run_id"]) as run:
        yield run


def epoch_callback() -> Any:
    """MLflow's own Keras callback, logging each epoch's metrics with step = epoch, synchronously
    and with retries (async logging could drop metrics when parallel jobs lock SQLite)."""
    from mlflow.keras import MlflowCallback

    class EpochMetrics(MlflowCallback):
        def on_epoch_end(self, epoch, logs=None):
            if logs:
                log_metrics(logs, step=epoch)

        def on_test_end(self, logs=None):
            """Validation metrics already come per epoch as val_*; skip the step-less copy."""

    return EpochMetrics()


@retry_when_locked
def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


@retry_when_locked
def set_tags(tags: dict[str, str]) -> None:
    mlflow.set_tags(tags)


def log_files(*files: Path, folder: str | None = None) -> None:
    for file in files:
        retry_when_locked(mlflow.log_artifact)(str(file), artifact_path=folder)


@contextlib.contextmanager
def _keras_example_folder_fix() -> Iterator[None]:
    """mlflow.keras.save_model writes input_example.json before creating the model folder
    (mlflow/mlflow#16183, still open in 3.17): create the folder first, for this call only."""
    from mlflow.keras import save as keras_save

    original = keras_save._save_example

    def save_example(mlflow_model, input_example, path, *args, **kwargs):
        os.makedirs(path, exist_ok=True)
        return original(mlflow_model, input_example, path, *args, **kwargs)

    keras_save._save_example = save_example
    try:
        yield
    finally:
        keras_save._save_example = original


def log_keras_model(model: Any, example: Any) -> str:
    """The model through the mlflow.keras flavour, with signature and input example."""
    import keras
    import mlflow.keras
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example, verbose=0))
    keras.utils.disable_interactive_logging()  # MLflow's own check predicts with a progress bar
    try:
        with _keras_example_folder_fix():
            info = retry_when_locked(mlflow.keras.log_model)(
                model, name="model", signature=signature, input_example=example
            )
    finally:
        keras.utils.enable_interactive_logging()
    set_tags({"model_uri": info.model_uri})
    return info.model_uri


def record_model(paths: Paths, model_uri: str) -> None:
    """Add the logged model's URI to the run file, for evaluate to register it."""
    record = json.loads(paths.run_file.read_text())
    paths.run_file.write_text(json.dumps(record | {"model_uri": model_uri}, indent=2) + "\n")


def recorded_model_uri(paths: Paths) -> str | None:
    try:
        return json.loads(paths.run_file.read_text()).get("model_uri")
    except (OSError, ValueError):
        return None


def load_keras_model(cfg: DictConfig, paths: Paths, model_uri: str) -> Any:
    """A Keras model from MLflow (models:/name@alias, models:/<model_id>, ...)."""
    import mlflow.keras

    configure(cfg, paths)
    try:
        return mlflow.keras.load_model(model_uri)
    except Exception as exc:  # MlflowException, OSError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"scans.model_uri={model_uri!r}: cannot load model: {first}") from None


# --- Model Registry: one registered model, the alias 'champion' on the best version ----------


def _better(accuracy: float, params: int, than: dict[str, str]) -> bool:
    """Higher test accuracy wins; on a tie, fewer parameters."""
    best_accuracy = float(than.get("test_accuracy", "-1"))
    best_params = int(float(than.get("params", "1e18")))
    return accuracy > best_accuracy or (accuracy == best_accuracy and params < best_params)


@retry_when_locked
def register_and_promote(
    name: str, model_uri: str, accuracy: float, params: int, run_id: str
) -> tuple[str, bool]:
    """Register the model as a new version of `name`; move 'champion' to it if it beats the
    current champion. Returns (version, promoted)."""
    client = MlflowClient()
    tags = {"test_accuracy": f"{accuracy:.6f}", "params": str(params), "run_id": run_id}
    version = mlflow.register_model(model_uri, name, tags=tags).version
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        champion = None
    promoted = champion is None or _better(accuracy, params, champion.tags)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    return str(version), promoted


# --- Sweeps: a parent run that every job's run hangs under ------------------------------------


def start_sweep_parent(cfg: DictConfig, paths: Paths, sweep_id: str, sweep_dir: Path) -> str:
    """Create the store and the parent run once, before jobs fan out; its id goes to a file."""
    experiment_id = configure(cfg, paths)
    client = MlflowClient()
    parent = client.create_run(
        experiment_id,
        run_name=f"sweep-{sweep_id}",
        tags={
            "sweep_id": sweep_id,
            "sweep_dir": str(sweep_dir),
            "git_commit": git_commit(paths.root),
        },
    )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "mlflow_parent.json").write_text(
        json.dumps({"run_id": parent.info.run_id, "sweep_id": sweep_id}) + "\n"
    )
    return parent.info.run_id


def sweep_parent(sweep_dir: Path) -> dict | None:
    try:
        return json.loads((sweep_dir / "mlflow_parent.json").read_text())
    except (OSError, ValueError):
        return None


def end_sweep_parent(cfg: DictConfig, paths: Paths, sweep_dir: Path) -> None:
    record = sweep_parent(sweep_dir)
    if record is None:
        return
    configure(cfg, paths)
    client = MlflowClient()
    if (sweep_dir / "multirun.yaml").is_file():
        client.log_artifact(record["run_id"], str(sweep_dir / "multirun.yaml"), "sweep")
    children = find_runs(cfg.mlflow.experiment_name, sweep_id=record["sweep_id"])
    failed = [r for r in children if r.info.status != "FINISHED"]
    client.set_tag(record["run_id"], "jobs", str(len(children)))
    client.set_terminated(record["run_id"], "FAILED" if failed else "FINISHED")


def find_runs(experiment_name: str, sweep_id: str | None = None) -> list:
    """The pipeline runs of an experiment (parents excluded), optionally of one sweep."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise UserError(f"mlflow: no experiment named {experiment_name!r}")
    query = "tags.architecture != ''"
    if sweep_id:
        query += f" and tags.sweep_id = '{sweep_id}'"
    return client.search_runs([experiment.experiment_id], filter_string=query, max_results=5000)


def log_to_sweep_parent(
    experiment_name: str, sweep_id: str, files: list[Path], folder: str
) -> None:
    """Attach files (e.g. the comparison report) to a sweep's parent run."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    parents = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.sweep_id = '{sweep_id}' and tags.sweep_dir != ''",
    )
    if not parents:
        raise UserError(f"compare: no parent run for sweep {sweep_id!r} in {experiment_name!r}")
    for file in files:
        client.log_artifact(parents[0].info.run_id, str(file), folder)
