"""The real pipeline: `dvc repro` once in a copy of the repo on tiny real MNIST, then what a
user sees of it, one promise per test."""

import json
import shutil
import time

import pytest
from mlflow.tracking import MlflowClient

from digitpipe.config import compose
from digitpipe.stages import pipeline
from tests.helpers.project import REPO, copy_project, run, store, tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repro(tmp_path_factory, mnist_raw):
    """A project copy after `params` with the tiny overrides and one `dvc repro`."""
    project = copy_project(tmp_path_factory.mktemp("repro") / "project")
    run(["python", "-m", "digitpipe.commands.params", *tiny_overrides(mnist_raw)], project)
    done = run(["dvc", "repro"], project)
    return project, done


@pytest.fixture(scope="module")
def mlrun(repro):
    project, _ = repro
    client = MlflowClient(store(project))
    experiment = client.get_experiment_by_name("digitpipe")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, "one pipeline run is one MLflow run"
    return client, experiment, runs[0]


def test_dvc_repro_runs_every_stage_of_the_one_pipeline_definition(repro):
    project, done = repro
    stages = list(pipeline(project / "dvc.yaml"))
    assert stages == ["prepare", "train", "evaluate", "predict-scans", "scan-benchmark"]
    started = [line for line in done.stdout.splitlines() if line.startswith("Running stage")]
    assert started == [f"Running stage '{stage}':" for stage in stages]


def test_every_stage_writes_its_outputs(repro):
    project, _ = repro
    out = project / "outputs"
    for path in (
        "train/model.keras",
        "train/history.csv",
        "train/curves.png",
        "train/model.png",
        "train/model_summary.txt",
        "evaluate/metrics.json",
        "evaluate/confusion.csv",
        "evaluate/mistakes.png",
        "evaluate/confusion_matrix.png",
        "evaluate/predictions_sample.png",
        "evaluate/true_vs_predicted.png",
        "evaluate/classification_report.txt",
        "scans/predictions.csv",
        "scans/gallery.png",
        "scan-benchmark/metrics.json",
        "scan-benchmark/gallery.png",
    ):
        assert (out / path).is_file(), path
    summary = (out / "train" / "model_summary.txt").read_text()
    assert "conv2d" in summary.lower() and "Total params" in summary


def test_tiny_training_learns_and_the_splits_have_the_asked_sizes(repro):
    project, _ = repro
    metrics = json.loads((project / "outputs" / "evaluate" / "metrics.json").read_text())["test"]
    assert metrics["accuracy"] > 0.8  # 3k images, 1 epoch: well above chance (0.1)
    counts = json.loads((project / "data" / "prepared" / "class_counts.json").read_text())
    assert counts["test"]["total"] == 1000 and counts["val"]["total"] == 500


def test_dvc_metrics_and_plots_show_the_results(repro):
    project, _ = repro
    shown = json.dumps(json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout))
    assert '"accuracy"' in shown and '"images"' in shown and '"naive_accuracy"' in shown
    plots = run(["dvc", "plots", "show", "--json"], project).stdout
    for name in ("Test confusion matrix", "model.png", "predictions_sample.png"):
        assert name in plots, name


def test_the_mlflow_run_holds_config_metrics_and_artifacts_of_every_stage(repro, mlrun):
    project, _ = repro
    client, experiment, found = mlrun
    evaluated = json.loads((project / "outputs" / "evaluate" / "metrics.json").read_text())
    metrics = evaluated["test"]
    assert found.info.status == "FINISHED"  # every tracked stage done
    assert found.info.run_name == "seed_blog_cnn-e1"
    assert found.data.params["train.epochs"] == "1"
    assert found.data.params["model.layers.0.type"] == "Conv2D"
    assert not [p for p in found.data.params if p.startswith("optimizer_")]
    assert found.data.tags["architecture"] == "seed_blog_cnn"
    assert len(found.data.tags["mlflow.source.git.commit"]) == 40
    assert found.data.tags["precision"] in ("float32", "mixed_bfloat16")
    assert found.data.tags["onednn"] == "on"  # dvc repro's stages: digitpipe turns it on
    note = found.data.tags["mlflow.note.content"]
    assert note.startswith("**seed_blog_cnn**, 1 epochs") and "test accuracy" in note
    assert found.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    # the kept model's validation accuracy, which the champion is chosen by, in dvc metrics too
    assert found.data.metrics["val_accuracy_final"] == pytest.approx(evaluated["val"]["accuracy"])
    assert "scan_accuracy" in found.data.metrics
    assert "scan_benchmark_naive_accuracy" in found.data.metrics
    history = client.get_metric_history(found.info.run_id, "val_accuracy")
    assert [h.step for h in history] == [0]
    artifacts = {
        a.path
        for folder in ("", "train", "evaluate", "scans", "scan-benchmark", "config")
        for a in client.list_artifacts(found.info.run_id, folder)
    }
    for name in (
        "config/params.yaml",
        "train/history.csv",
        "train/model.png",
        "train/model_summary.txt",
        "evaluate/confusion_matrix.png",
        "evaluate/classification_report.txt",
        "evaluate/mistakes.png",
        "evaluate/predictions_sample.png",
        "evaluate/true_vs_predicted.png",
        "scans/predictions.csv",
        "scans/gallery.png",
        "scan-benchmark/metrics.json",
    ):
        assert name in artifacts, name


def test_the_experiment_opens_on_training_runs_and_shows_its_data(mlrun):
    client, experiment, found = mlrun
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    inputs = {i.dataset.name: i for i in found.inputs.dataset_inputs}
    assert set(inputs) == {"mnist-train", "mnist-val", "mnist-test"}
    assert all(i.dataset.digest and i.dataset.source for i in inputs.values())
    contexts = {name: [t.value for t in i.tags] for name, i in inputs.items()}
    assert contexts["mnist-train"] == ["training"] and contexts["mnist-test"] == ["testing"]


def test_the_logged_model_is_named_after_its_architecture_with_final_metrics(mlrun):
    client, experiment, found = mlrun
    models = client.search_logged_models([experiment.experiment_id])
    assert len(models) == 1 and models[0].source_run_id == found.info.run_id
    assert models[0].name == "seed_blog_cnn"
    linked = {m.key: m.value for m in models[0].metrics}
    keys = [m.key for m in models[0].metrics]
    assert keys.count("test_accuracy") == 1  # logged once, to the run and its model together
    assert len(client.get_metric_history(found.info.run_id, "test_accuracy")) == 1
    assert linked["test_accuracy"] == pytest.approx(found.data.metrics["test_accuracy"])
    history = client.get_metric_history(found.info.run_id, "val_accuracy")
    assert linked["val_accuracy"] == pytest.approx(max(history, key=lambda m: m.step).value)
    assert {m.step for m in models[0].metrics if m.key == "val_accuracy"} == {len(history) - 1}


def test_the_champion_is_chosen_on_validation_accuracy(mlrun):
    client, _, found = mlrun
    champion = client.get_model_version_by_alias("digit-classifier", "champion")
    assert champion.tags["run_id"] == found.info.run_id
    assert float(champion.tags["val_accuracy"]) == pytest.approx(
        found.data.metrics["val_accuracy_final"], abs=1e-6
    )


def test_nothing_changed_means_nothing_runs(repro):
    project, _ = repro
    again = run(["dvc", "repro"], project)
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout


def test_a_queued_experiment_reruns_what_its_override_touches_into_the_project_store(repro, mlrun):
    """`dvc exp run --queue -S`: Hydra composes params.yaml, DVC runs the experiment in a
    temporary copy under .dvc/tmp/exps and re-runs only the stages downstream of the override;
    MLflow still logs to this project's store."""
    project, _ = repro
    client, experiment, _ = mlrun
    sets = [f"-S{o}" for o in tiny_overrides(REPO / "data" / "raw")]
    queue = ["dvc", "exp", "run", "--queue", "--name", "lab", *sets, "-S", "model=seed_lab_cnn"]
    run(queue, project)
    run(["dvc", "queue", "start"], project)
    deadline = time.time() + 300
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], project).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert "Success" in status, status
    log = run(["dvc", "queue", "logs", "lab"], project).stdout
    assert "Running stage 'train'" in log and "Running stage 'prepare'" not in log, log
    names = sorted(r.info.run_name for r in client.search_runs([experiment.experiment_id]))
    assert names == ["seed_blog_cnn-e1", "seed_lab_cnn-e1"]
    assert not list((project / ".dvc" / "tmp").rglob("mlflow.db"))
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    (lab,) = [e for b in shown for x in b.get("experiments") or [] for e in x["revs"]
              if e.get("name") == "lab"]  # fmt: skip
    assert lab["data"]["params"]["params.yaml"]["data"]["model"]["name"] == "seed_lab_cnn"


def test_where_mnist_comes_from_does_not_retrain(repro, mnist_raw, tmp_path):
    """The files are verified by SHA-256 whatever their source: another folder (or URL) with
    MNIST in it is the same data, and nothing runs again; a split setting is not."""
    project, _ = repro
    elsewhere = tmp_path / "mnist-elsewhere"
    elsewhere.symlink_to(mnist_raw, target_is_directory=True)
    original = (project / "params.yaml").read_text()
    params = ["python", "-m", "digitpipe.commands.params", *tiny_overrides(mnist_raw)]
    try:
        run([*params, f"data.source_dir={elsewhere}", "data.download_timeout_s=5"], project)
        assert "up to date" in run(["dvc", "status"], project).stdout
        run([*params, "data.split_seed=7"], project)
        changed = run(["dvc", "status"], project).stdout
        assert "prepare:" in changed and "data.split_seed" in changed, changed
    finally:
        (project / "params.yaml").write_text(original)


@pytest.mark.parametrize(
    ("module", "stage"),
    [("augment.py", "train"), ("config.py", "prepare"), ("scans/segment.py", "predict-scans")],
)
def test_editing_an_imported_module_makes_dvc_status_name_the_stage(repro, module, stage):
    project, _ = repro
    source = project / "src" / "digitpipe" / module
    original = source.read_text()
    source.write_text(original + "\n# an edit\n")
    try:
        status = run(["dvc", "status"], project).stdout
    finally:
        source.write_text(original)
    assert f"{stage}:" in status and f"src/digitpipe/{module}" in status, status


def test_pictures_in_a_folder_elsewhere_are_read_again_when_one_is_added(
    repro, mnist_raw, tmp_path
):
    """scans.dir may point outside the project; that folder is predict-scans' dependency, so
    `dvc repro` notices a new picture in it (and nothing upstream runs again)."""
    project = shutil.copytree(repro[0], tmp_path / "project", symlinks=True)
    pictures = tmp_path / "my-pictures"
    pictures.mkdir()
    samples = sorted((REPO / "data" / "scans").glob("scan_*"))
    shutil.copy(samples[0], pictures)
    params = ["python", "-m", "digitpipe.commands.params", *tiny_overrides(mnist_raw)]
    run([*params, f"scans.dir={pictures}"], project)

    def read_rows() -> tuple[list[str], int]:
        done = run(["dvc", "repro"], project)
        ran = [line for line in done.stdout.splitlines() if line.startswith("Running stage")]
        rows = (project / "outputs" / "scans" / "predictions.csv").read_text().splitlines()
        return ran, len(rows) - 1

    assert read_rows() == (["Running stage 'predict-scans':"], 1)
    shutil.copy(samples[1], pictures)
    assert read_rows() == (["Running stage 'predict-scans':"], 2)


def test_bad_override_fails_with_one_line(project_copy):
    done = run(
        ["python", "-m", "digitpipe.commands.params", "model=foo"], project_copy, check=False
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "model/foo" in done.stderr and "seed_lab_cnn" in done.stderr


def test_compose_matches_what_the_pipeline_reads(mnist_raw):
    cfg = compose(REPO / "conf", tiny_overrides(mnist_raw))
    assert cfg.data.train_limit == 3000 and cfg.train.epochs == 1
