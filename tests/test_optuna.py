"""Hydra multirun with the Optuna sweeper: the whole pipeline once per trial, one MLflow run
each, and the search maximises validation accuracy (never the test set)."""

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.helpers.project import run, tiny_overrides

pytestmark = pytest.mark.slow


def test_optuna_search_maximises_validation_accuracy(project_copy, mnist_raw, tmp_path):
    sweep_dir = tmp_path / "search"
    run(
        [
            "python",
            "-m",
            "digitpipe.commands.sweep",
            "hparams_search=digitnet_optuna",
            "hydra.sweeper.n_trials=2",
            *tiny_overrides(mnist_raw),
            "mlflow.log_model=false",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        project_copy,
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'search.db'}"},
    )
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    # train.batch_size is searched too, but the tiny overrides fix it from the command line
    assert set(results.best_params) == {"train.learning_rate", "model.dropout"}
    client = MlflowClient(f"sqlite:///{tmp_path / 'search.db'}")
    runs = client.search_runs(
        [client.get_experiment_by_name("digitpipe").experiment_id], "tags.architecture = 'digitnet'"
    )
    assert len(runs) == 2
    # the best trial's score is the kept model's validation accuracy, as evaluate measured it
    best_val = max(r.data.metrics["val_accuracy_final"] for r in runs)
    assert results.best_value == pytest.approx(best_val, abs=1e-6)
