"""The whole pipeline in-process, once per Hydra job; for sweeps:

    python -m digitpipe.experiment -m model=seed_blog_cnn,seed_lab_cnn train.epochs=1,2
    python -m digitpipe.experiment -m 'model=glob(*)' hydra/launcher=joblib

Each job writes under Hydra's sweep folder and is its own MLflow run in one experiment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from digitpipe import evaluate, predict_scans, prepare, tracking, train
from digitpipe.config import validate
from digitpipe.errors import UserError
from digitpipe.paths import Paths


def data_key(cfg: DictConfig) -> str:
    """Jobs with the same data config share one prepared copy."""
    text = json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_pipeline(
    cfg: DictConfig, paths: Paths, tags: dict[str, str] | None = None, parent: str | None = None
) -> dict:
    """prepare (if not already there) → train → evaluate → predict-scans."""
    if not (paths.prepared_dir / "test.npz").is_file():
        prepare.run(cfg, paths)
    summary = train.run(cfg, paths, tags=tags, parent_run_id=parent)
    metrics = evaluate.run(cfg, paths)
    predict_scans.run(cfg, paths)
    return {"val_accuracy": summary.get("best_val_accuracy"), "test_accuracy": metrics["accuracy"]}


@hydra.main(config_path="../../conf", config_name="config", version_base="1.3")
def main(raw: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    try:
        cfg = validate(raw)
        paths = Paths.for_job(Path(hydra_cfg.runtime.output_dir), data_key(cfg))
        tags = {"hydra_overrides": hydra_cfg.job.override_dirname or "(defaults)"}
        parent = None
        if hydra_cfg.mode == RunMode.MULTIRUN:
            sweep = tracking.sweep_parent(Path(hydra_cfg.sweep.dir).resolve()) or {}
            parent = sweep.get("run_id")
            tags |= {"sweep_id": sweep.get("sweep_id", ""), "hydra_job": str(hydra_cfg.job.num)}
        metrics = run_pipeline(cfg, paths, tags=tags, parent=parent)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    # What a sweeper (Optuna) maximises: validation accuracy, never the test set.
    return metrics["val_accuracy"] if metrics["val_accuracy"] is not None else float("nan")


if __name__ == "__main__":
    main()
