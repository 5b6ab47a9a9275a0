"""Hydra multirun: the whole pipeline once per sweep point, one MLflow run each."""

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.helpers.project import run, tiny_overrides

pytestmark = pytest.mark.slow


def test_two_job_sweep_gives_two_runs(project_copy, mnist_raw, tmp_path):
    store = f"sqlite:///{tmp_path / 'sweep.db'}"
    sweep_dir = tmp_path / "sweep"
    done = run(
        [
            "python",
            "-m",
            "digitpipe.commands.sweep",
            "-m",
            "model=seed_blog_cnn,seed_lab_cnn",
            *tiny_overrides(mnist_raw),
            "mlflow.experiment_name=sweep-test",
            "mlflow.log_model=false",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        project_copy,
        env={"MLFLOW_TRACKING_URI": store},
    )
    assert "#0 : model=seed_blog_cnn" in done.stdout and "#1 : model=seed_lab_cnn" in done.stdout
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("sweep-test")
    parent = client.search_runs([experiment.experiment_id], "tags.sweep_dir != ''")
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'"
    )
    assert sorted(r.info.run_name for r in runs) == ["seed_blog_cnn-e1", "seed_lab_cnn-e1"]
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.metrics["test_accuracy"] > 0.5
        assert f"model={r.data.tags['architecture']}" in r.data.tags["hydra_overrides"]
    # a store given by MLFLOW_TRACKING_URI keeps its artifacts beside its database
    assert list((tmp_path / "artifacts").rglob("confusion_matrix.png"))
    assert not list((project_copy / "mlruns").rglob("confusion_matrix.png"))
    for job in ("0", "1"):
        assert (sweep_dir / job / "outputs" / "evaluate" / "metrics.json").is_file()
        assert (sweep_dir / job / ".hydra" / "overrides.yaml").is_file()


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
    best_val = max(
        max(m.value for m in client.get_metric_history(r.info.run_id, "val_accuracy")) for r in runs
    )
    assert results.best_value == pytest.approx(best_val, abs=1e-4)
