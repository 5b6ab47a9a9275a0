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
from omegaconf import DictConfig, OmegaConf

from digitpipe import evaluate, predict_scans, prepare, train
from digitpipe.config import validate
from digitpipe.errors import UserError
from digitpipe.paths import Paths


def data_key(cfg: DictConfig) -> str:
    """Jobs with the same data config share one prepared copy."""
    text = json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_pipeline(cfg: DictConfig, paths: Paths, tags: dict[str, str] | None = None) -> dict:
    """prepare (if not already there) → train → evaluate → predict-scans; returns test metrics."""
    if not (paths.prepared_dir / "test.npz").is_file():
        prepare.run(cfg, paths)
    train.run(cfg, paths, tags=tags)
    metrics = evaluate.run(cfg, paths)
    predict_scans.run(cfg, paths)
    return metrics


@hydra.main(config_path="../../conf", config_name="config", version_base="1.3")
def main(raw: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    try:
        cfg = validate(raw)
        paths = Paths.for_job(Path(hydra_cfg.runtime.output_dir), data_key(cfg))
        tags = {
            "hydra_overrides": hydra_cfg.job.override_dirname or "(defaults)",
            "hydra_job": str(hydra_cfg.job.get("num", 0)),
        }
        metrics = run_pipeline(cfg, paths, tags=tags)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    return metrics["accuracy"]  # what a sweeper (e.g. Optuna) maximises


if __name__ == "__main__":
    main()
