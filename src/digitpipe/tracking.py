"""The one place that talks to MLflow.

One pipeline run is one MLflow run: train opens it and writes its id to `Paths.run_file`;
evaluate and predict-scans reopen the same run from that file.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from digitpipe.config import flatten, run_name
from digitpipe.errors import UserError
from digitpipe.paths import Paths


def tracking_uri(cfg: DictConfig, paths: Paths) -> str:
    """MLFLOW_TRACKING_URI wins, then mlflow.tracking_uri, then the project's SQLite store."""
    return (
        os.environ.get("MLFLOW_TRACKING_URI")
        or cfg.mlflow.tracking_uri
        or (paths.default_tracking_uri)
    )


def configure(cfg: DictConfig, paths: Paths) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns its id."""
    uri = tracking_uri(cfg, paths)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    name = cfg.mlflow.experiment_name
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # A local store keeps artifacts under mlruns/ beside the database; a server decides itself.
    location = paths.artifact_root_uri if uri == paths.default_tracking_uri else None
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
) -> Iterator[mlflow.ActiveRun]:
    """Open the run for a new pipeline run (or reopen an interrupted one), log the whole config,
    and record the run id for the later stages."""
    experiment_id = configure(cfg, paths)
    if resume_run_id is not None:
        with mlflow.start_run(run_id=resume_run_id) as run:
            yield run
            mlflow.flush_async_logging()
        return
    run_tags = {
        "architecture": cfg.model.name,
        "epochs": str(cfg.train.epochs),
        "git_commit": git_commit(paths.root),
        **(tags or {}),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name(cfg), tags=run_tags
    ) as run:
        mlflow.log_params(flatten(cfg))
        mlflow.log_text(OmegaConf.to_yaml(cfg), "config/params.yaml")
        paths.run_file.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "run_id": run.info.run_id,
            "experiment_id": experiment_id,
            "tracking_uri": mlflow.get_tracking_uri(),
        }
        paths.run_file.write_text(json.dumps(record, indent=2) + "\n")
        yield run
        mlflow.flush_async_logging()


@contextlib.contextmanager
def resume_pipeline_run(cfg: DictConfig, paths: Paths) -> Iterator[mlflow.ActiveRun]:
    """Reopen the run that train started, so every stage logs into one MLflow run."""
    try:
        record = json.loads(paths.run_file.read_text())
    except (OSError, ValueError):
        raise UserError(f"{paths.run_file}: no MLflow run recorded (run the train stage)") from None
    configure(cfg, paths)
    with mlflow.start_run(run_id=record["run_id"]) as run:
        yield run
        mlflow.flush_async_logging()


def epoch_callback() -> Any:
    """MLflow's own Keras callback: per-epoch metrics with step = epoch."""
    from mlflow.keras import MlflowCallback

    return MlflowCallback()


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_files(*files: Path, folder: str | None = None) -> None:
    for file in files:
        mlflow.log_artifact(str(file), artifact_path=folder)


def log_dict(data: dict, name: str) -> None:
    mlflow.log_dict(data, name)


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
    import mlflow.keras
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example, verbose=0))
    with _keras_example_folder_fix():
        info = mlflow.keras.log_model(
            model, name="model", signature=signature, input_example=example
        )
    mlflow.set_tag("model_uri", info.model_uri)
    return info.model_uri


def load_keras_model(cfg: DictConfig, paths: Paths, model_uri: str) -> Any:
    """A Keras model from MLflow (models:/name@alias, models:/<model_id>, ...)."""
    import mlflow.keras

    configure(cfg, paths)
    try:
        return mlflow.keras.load_model(model_uri)
    except Exception as exc:  # MlflowException, OSError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"scans.model_uri={model_uri!r}: cannot load model: {first}") from None
