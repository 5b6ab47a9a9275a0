"""The real pipeline: `dvc repro` in a copy of the repo on tiny real MNIST, checked end to end."""

import json
import time

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from digitpipe.config import compose
from tests.conftest import REPO, run, tiny_overrides

pytestmark = pytest.mark.slow


def test_dvc_repro_runs_all_stages_and_logs_one_mlflow_run(project_copy, mnist_raw):
    overrides = tiny_overrides(mnist_raw)
    run(["python", "-m", "digitpipe.params", *overrides], project_copy)
    first = run(["dvc", "repro"], project_copy)
    for stage in ("prepare", "train", "evaluate", "predict-scans"):
        assert f"Running stage '{stage}'" in first.stdout

    out = project_copy / "outputs"
    for path in (
        "train/model.keras",
        "train/history.csv",
        "train/curves.png",
        "evaluate/metrics.json",
        "evaluate/confusion.csv",
        "evaluate/mistakes.png",
        "evaluate/confusion_matrix.png",
        "evaluate/classification_report.txt",
        "scans/predictions.csv",
        "scans/gallery.png",
    ):
        assert (out / path).is_file(), path
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())["test"]
    assert metrics["accuracy"] > 0.8  # 3k images, 1 epoch: well above chance (0.1)
    counts = json.loads((project_copy / "data" / "prepared" / "class_counts.json").read_text())
    assert counts["test"]["total"] == 1000 and counts["val"]["total"] == 500

    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project_copy).stdout)
    flat = json.dumps(shown)
    assert '"accuracy"' in flat and '"images"' in flat
    plots = run(["dvc", "plots", "show", "--json"], project_copy).stdout
    assert "Test confusion matrix" in plots

    # one MLflow run in the project's own store, with everything every stage logged
    client = MlflowClient(f"sqlite:///{project_copy / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digitpipe")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    mlrun = runs[0]
    assert mlrun.info.run_name == "seed_blog_cnn-e1"
    assert mlrun.data.params["train.epochs"] == "1"
    assert mlrun.data.params["model.layers.0.type"] == "Conv2D"
    assert mlrun.data.tags["architecture"] == "seed_blog_cnn"
    assert len(mlrun.data.tags["git_commit"]) == 40
    assert mlrun.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert "scan_accuracy" in mlrun.data.metrics
    history = client.get_metric_history(mlrun.info.run_id, "val_accuracy")
    assert [h.step for h in history] == [0]
    artifacts = {
        a.path
        for folder in ("", "train", "evaluate", "scans", "config")
        for a in client.list_artifacts(mlrun.info.run_id, folder)
    }
    for name in (
        "config/params.yaml",
        "train/history.csv",
        "evaluate/confusion_matrix.png",
        "evaluate/classification_report.txt",
        "evaluate/mistakes.png",
        "scans/predictions.csv",
        "scans/gallery.png",
    ):
        assert name in artifacts, name
    models = client.search_logged_models([experiment.experiment_id])
    assert len(models) == 1 and models[0].source_run_id == mlrun.info.run_id

    # nothing changed: nothing runs
    again = run(["dvc", "repro"], project_copy)
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout

    # a DVC experiment with a Hydra override re-runs exactly what depends on it
    exp = run(
        ["dvc", "exp", "run", *[f"-S{o}" for o in overrides], "-S", "model=seed_lab_cnn"],
        project_copy,
    )
    assert "Running stage 'prepare'" not in exp.stdout
    assert "Running stage 'train'" in exp.stdout
    params = OmegaConf.load(project_copy / "params.yaml")
    assert params.model.name == "seed_lab_cnn"
    assert len(client.search_runs([experiment.experiment_id])) == 2
    table = run(["dvc", "exp", "show", "--json"], project_copy).stdout
    assert "seed_lab_cnn" in table

    # a queued experiment runs in DVC's temporary copy; its MLflow run lands in this store
    sets = [f"-S{o}" for o in overrides]
    run(["dvc", "exp", "run", "--queue", *sets, "-S", "train.epochs=2"], project_copy)
    run(["dvc", "queue", "start"], project_copy)
    deadline = time.time() + 300
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], project_copy).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert "Success" in status, status
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == [
        "seed_blog_cnn-e1",
        "seed_blog_cnn-e2",
        "seed_lab_cnn-e1",
    ]
    assert not list((project_copy / ".dvc" / "tmp").rglob("mlflow.db"))


def test_bad_override_fails_with_one_line(project_copy):
    done = run(["python", "-m", "digitpipe.params", "model=foo"], project_copy, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "model/foo" in done.stderr and "seed_lab_cnn" in done.stderr


def test_compose_matches_what_the_pipeline_reads(mnist_raw):
    cfg = compose(REPO / "conf", tiny_overrides(mnist_raw))
    assert cfg.data.train_limit == 3000 and cfg.train.epochs == 1
