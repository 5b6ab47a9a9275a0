"""The life of one pipeline run in MLflow.

train opens the run and writes its id to `Paths.run_file`; every later stage reopens it. A stage
that fails marks the run FAILED; the run is FINISHED only once every tracked stage is done
(RUNNING in between). Per-stage tags `digitpipe.stage.<name>=done` record the progress.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from digitpipe.config import flatten, run_name
from digitpipe.errors import UserError
from digitpipe.paths import Paths
from digitpipe.tracking.store import configure, retry_when_locked

if TYPE_CHECKING:
    from mlflow.data.dataset import Dataset

STAGE_TAG = "digitpipe.stage."
ATTEMPT_TAG = "digitpipe.attempt"


def write_run_file(paths: Paths, record: dict[str, Any]) -> None:
    paths.run_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.run_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(paths.run_file)


def read_run_file(paths: Paths) -> dict[str, Any]:
    try:
        return json.loads(paths.run_file.read_text())
    except (OSError, ValueError):
        raise UserError(f"{paths.run_file}: no MLflow run recorded (run the train stage)") from None


@contextlib.contextmanager
def _finishing(stage: str, tracked_stages: Iterable[str]) -> Iterator[None]:
    """Close the active run: KILLED on Ctrl-C, FAILED on an error, FINISHED once every tracked
    stage is done."""
    try:
        yield
    except KeyboardInterrupt:
        retry_when_locked(mlflow.end_run)("KILLED")
        raise
    except BaseException:
        retry_when_locked(mlflow.end_run)("FAILED")
        raise
    run_id = mlflow.active_run().info.run_id
    set_tags({f"{STAGE_TAG}{stage}": "done"})
    data = retry_when_locked(MlflowClient().get_run)(run_id).data
    done = all(data.tags.get(f"{STAGE_TAG}{s}") == "done" for s in tracked_stages)
    if done:
        set_tags({"mlflow.note.content": description(data.tags, data.metrics)})
    retry_when_locked(mlflow.end_run)("FINISHED" if done else "RUNNING")


def description(tags: dict[str, str], metrics: dict[str, float]) -> str:
    """The run's description in the MLflow UI: what was trained and how well it does."""
    parts = [f"**{tags.get('architecture', '?')}**, {tags.get('epochs', '?')} epochs"]
    for key, label in (
        ("val_accuracy_final", "validation accuracy"),
        ("test_accuracy", "test accuracy"),
        ("scan_accuracy", "scan accuracy"),
        ("scan_benchmark_accuracy", "scan benchmark accuracy"),
    ):
        if key in metrics:
            parts.append(f"{label} {metrics[key]:.2%}")
    return ": ".join(parts[:1]) + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "") + "."


@contextlib.contextmanager
def start_pipeline_run(
    cfg: DictConfig,
    paths: Paths,
    tracked_stages: Iterable[str],
    tags: dict[str, str] | None = None,
    resume_run_id: str | None = None,
    parent_run_id: str | None = None,
    attempt: Callable[[], str] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """train: open a new pipeline run (or reopen an interrupted one) with the whole config.

    `attempt()` (resume.attempt_key: called once the store answers, so a mistake writes
    nothing) gives a key that is tagged on a new run; a run that already carries it was opened
    by this same training before it was killed, and is reopened rather than duplicated.
    """
    experiment_id = configure(cfg, paths)
    tracked = list(tracked_stages)
    if resume_run_id is not None:
        run = retry_when_locked(mlflow.start_run)(run_id=resume_run_id)
    else:
        key = attempt() if attempt else None
        orphan = _run_of_attempt(experiment_id, key) if key else None
        if orphan is not None:
            run = retry_when_locked(mlflow.start_run)(run_id=orphan)
        else:
            run_tags = {
                "architecture": cfg.model.name,
                "epochs": str(cfg.train.epochs),
                **({ATTEMPT_TAG: key} if key else {}),
                **(tags or {}),
            }
            run = retry_when_locked(mlflow.start_run)(
                experiment_id=experiment_id,
                run_name=run_name(cfg),
                tags=run_tags,
                parent_run_id=parent_run_id,
            )
        logged = run.data.params if orphan is not None else {}  # the orphan's, if it got so far
        unlogged = {k: v for k, v in flatten(cfg).items() if k not in logged}
        retry_when_locked(mlflow.log_params)(unlogged)
        retry_when_locked(mlflow.log_text)(OmegaConf.to_yaml(cfg), "config/params.yaml")
    write_run_file(
        paths,
        {
            "run_id": run.info.run_id,
            "experiment_id": experiment_id,
            "tracking_uri": mlflow.get_tracking_uri(),
        },
    )
    with _finishing(tracked[0], tracked):
        yield run


def _run_of_attempt(experiment_id: str, attempt: str) -> str | None:
    found = retry_when_locked(MlflowClient().search_runs)(
        [experiment_id], filter_string=f"tags.`{ATTEMPT_TAG}` = '{attempt}'", max_results=1
    )
    return found[0].info.run_id if found else None


@contextlib.contextmanager
def stage_run(
    cfg: DictConfig, paths: Paths, stage: str, tracked_stages: Iterable[str]
) -> Iterator[mlflow.ActiveRun]:
    """A later stage: reopen the run that train started, so one pipeline run is one MLflow run."""
    record = read_run_file(paths)
    configure(cfg, paths)
    run = retry_when_locked(mlflow.start_run)(run_id=record["run_id"])
    with _finishing(stage, list(tracked_stages)):
        yield run


@contextlib.contextmanager
def side_run(
    cfg: DictConfig, paths: Paths, name: str, tags: dict[str, str]
) -> Iterator[mlflow.ActiveRun]:
    """A run of its own, for results that are not the pipeline run's (another scans folder or
    model): linked by tags, never overwriting the pipeline run's metrics."""
    experiment_id = configure(cfg, paths)
    with retry_when_locked(mlflow.start_run)(
        experiment_id=experiment_id, run_name=name, tags=tags
    ) as run:
        yield run


def pipeline_params(run_id: str) -> dict[str, str]:
    return retry_when_locked(MlflowClient().get_run)(run_id).data.params


@retry_when_locked
def log_metrics(
    metrics: dict[str, float], step: int | None = None, model_uri: str | None = None
) -> None:
    """To the active run; with `model_uri` (models:/<model_id>) also to that logged model."""
    model_id = model_uri.removeprefix("models:/") if model_uri else None
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step, model_id=model_id)


@retry_when_locked
def set_tags(tags: dict[str, str]) -> None:
    mlflow.set_tags(tags)


@retry_when_locked
def log_params(params: dict[str, str]) -> None:
    mlflow.log_params(params)


def log_files(*files: Path, folder: str | None = None) -> None:
    for file in files:
        retry_when_locked(mlflow.log_artifact)(str(file), artifact_path=folder)


def epoch_callback() -> Any:
    """MLflow's own Keras callback, logging each epoch's metrics with step = epoch, synchronously
    and with retries (async logging could drop metrics when parallel jobs lock SQLite). The
    optimizer's params are not logged: the config's train.* params already say it all."""
    from mlflow.keras import MlflowCallback

    class EpochMetrics(MlflowCallback):
        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            """The run already holds the whole config as params."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs:
                log_metrics(logs, step=epoch)

        def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
            """Validation metrics already come per epoch as val_*; skip the step-less copy."""

    return EpochMetrics()


def log_datasets(split_files: dict[str, Path]) -> None:
    """The prepared MNIST splits as MLflow dataset inputs (digest, source, context), so the
    UI's Datasets column shows what each run trained and was judged on."""
    import hashlib
    import io
    import warnings

    import numpy as np

    contexts = {"train": "training", "val": "validation", "test": "testing"}
    for split, context in contexts.items():
        path = split_files[split]
        blob = path.read_bytes()  # read once: hashed whole and loaded
        with np.load(io.BytesIO(blob)) as arrays, warnings.catch_warnings():
            # MLflow registers its local-file source twice and warns that a path fits both
            warnings.filterwarnings("ignore", message="The specified dataset source")
            dataset = mlflow.data.from_numpy(
                arrays["x"],
                targets=arrays["y"],
                source=str(path),
                name=f"mnist-{split}",
                digest=hashlib.sha256(blob).hexdigest()[:16],
            )
        log_input_raced(dataset, context)


def log_input_raced(dataset: Dataset, context: str, attempts: int = 3) -> None:
    """mlflow.log_input, once more when a parallel job inserted the same dataset row first
    (PostgreSQL: duplicate key; SQLite: UNIQUE constraint): the retry finds it and links it."""
    for attempt in range(attempts):
        try:
            return retry_when_locked(mlflow.log_input)(dataset, context=context)
        except Exception as exc:  # MlflowException (server) or sqlalchemy IntegrityError
            clash = "duplicate key value" in str(exc) or "UNIQUE constraint failed" in str(exc)
            if not clash or attempt == attempts - 1:
                raise
            time.sleep(0.2)
