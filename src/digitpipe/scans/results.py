"""Where a folder's reading goes: the model that reads it (the pipeline's own or
scans.model_uri's), its files, and MLflow: the pipeline run when the results are its own (its
model and the folder its config names), else a run of their own linked by tags. Shared by
predict-scans and scan-benchmark.

Keras and MLflow are imported inside the functions: predict-scans' worker processes re-import
the stage module, and with TensorFlow each of them took about 8 s to start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from digitpipe.paths import Paths


def load_model(cfg: DictConfig, paths: Paths) -> tuple[Any, dict[str, str]]:
    """The pipeline's own model, or the one named by scans.model_uri (e.g. models:/x@champion)
    with {"model": its URI}, an alias pinned to the version it points at now (DVC sees only
    the alias, so the results must say which version read them)."""
    from digitpipe import models, tracking

    if not cfg.scans.model_uri:
        return models.load(paths.model_file), {}
    tracking.configure(cfg, paths)
    pinned = tracking.pinned_model_uri(cfg.scans.model_uri)
    return tracking.load_keras_model(cfg, paths, pinned), {"model": pinned}


def mlflow_metrics(summary: dict, prefix: str) -> dict[str, float]:
    metrics = {f"{prefix}_images": summary["images"], f"{prefix}_errors": summary["errors"]}
    for key in ("accuracy", "accepted_accuracy", "acceptance_rate"):
        if key in summary:
            metrics[f"{prefix}_{key}"] = summary[key]
    for case, value in summary.get("by_case", {}).items():
        metrics[f"{prefix}_accuracy_{case}"] = value
    for case, value in summary.get("digits_by_case", {}).items():
        metrics[f"{prefix}_digit_accuracy_{case}"] = value
    return metrics


def belongs_to_pipeline_run(cfg: DictConfig, paths: Paths, keys: tuple[str, ...]) -> str | None:
    """The pipeline run's id if these results are its own: its model and, for each key, the
    value its config was logged with. None: the results need a run of their own."""
    from digitpipe import tracking

    if cfg.scans.model_uri or not paths.run_file.is_file():
        return None
    run_id = tracking.read_run_file(paths)["run_id"]
    tracking.configure(cfg, paths)
    logged = tracking.pipeline_params(run_id)
    same = all(logged.get(key) == str(OmegaConf.select(cfg, key)) for key in keys)
    return run_id if same else None


def log_results(
    cfg: DictConfig,
    paths: Paths,
    stage: str,
    keys: tuple[str, ...],
    metrics: dict,
    files: list,
    model_uri: str | None = None,
) -> None:
    """Into the pipeline run when the results are its own, else into a linked run of their own
    (none without any model run: a bare folder read before training)."""
    from digitpipe import tracking
    from digitpipe.stages import tracked_stages

    folder = files[0].parent.name
    if not paths.run_file.is_file() and not cfg.scans.model_uri:
        return
    if belongs_to_pipeline_run(cfg, paths, keys):
        with tracking.stage_run(cfg, paths, stage, tracked_stages(cfg, paths)):
            tracking.log_metrics(metrics)
            tracking.log_files(*files, folder=folder)
        return
    model = model_uri or str(paths.model_file)  # model_uri: pinned by load_model
    tags = {"scans_of_model": model, "scans_dir": str(OmegaConf.select(cfg, keys[0]))}
    if paths.run_file.is_file() and not cfg.scans.model_uri:
        tags["model_run_id"] = tracking.read_run_file(paths)["run_id"]
    with tracking.side_run(cfg, paths, f"{stage}-{Path(tags['scans_dir']).name}", tags) as run:
        tracking.log_metrics(metrics)
        tracking.log_files(*files, folder=folder)
    print(
        f"{stage}: another folder or model than the pipeline run's, so logged to a run of its "
        f"own: MLflow run {run.info.run_id}"
    )


def write(out: Path, table: pd.DataFrame, summary: dict, key: str) -> list[Path]:
    """predictions.csv (a row a picture) and metrics.json ({key: summary}) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "predictions.csv", index=False)
    (out / "metrics.json").write_text(json.dumps({key: summary}, indent=2) + "\n")
    return [out / "predictions.csv", out / "metrics.json"]
