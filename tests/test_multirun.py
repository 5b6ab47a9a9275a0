"""Hydra multirun: the whole pipeline once per sweep point, one MLflow run each."""

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run, tiny_overrides

pytestmark = pytest.mark.slow


def test_two_job_sweep_gives_two_runs(project_copy, mnist_raw, tmp_path):
    store = f"sqlite:///{tmp_path / 'sweep.db'}"
    sweep_dir = tmp_path / "sweep"
    done = run(
        [
            "python",
            "-m",
            "digitpipe.experiment",
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
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["seed_blog_cnn-e1", "seed_lab_cnn-e1"]
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.metrics["test_accuracy"] > 0.5
        assert f"model={r.data.tags['architecture']}" in r.data.tags["hydra_overrides"]
    for job in ("0", "1"):
        assert (sweep_dir / job / "outputs" / "evaluate" / "metrics.json").is_file()
        assert (sweep_dir / job / ".hydra" / "overrides.yaml").is_file()
