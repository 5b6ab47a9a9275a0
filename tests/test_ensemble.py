"""An ensemble is an ordinary model: one .keras file whose output is the members' mean, one
MLflow run and registry version chosen on validation, and predict-scans reads it as it is."""

import json

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from digitpipe import models
from digitpipe.config import compose
from digitpipe.mnist import splits
from tests.helpers.project import copy_project, run, store, tiny_overrides

pytestmark = pytest.mark.slow

ENSEMBLE = ["python", "-m", "digitpipe.commands.ensemble"]


@pytest.fixture(scope="module")
def members(tmp_path_factory, mnist_raw):
    """Two small models trained for one epoch on a project copy's tiny prepared data."""
    project_copy = copy_project(tmp_path_factory.mktemp("ensemble") / "project")
    run(["python", "-m", "digitpipe.commands.params", *tiny_overrides(mnist_raw)], project_copy)
    run(["python", "-m", "digitpipe.stages.prepare"], project_copy)
    x, y = splits.load(project_copy / "data" / "prepared", "train")
    files = []
    for name in ("lenet5", "seed_lab_cnn"):
        keras.utils.set_random_seed(0)
        model = models.build(compose(project_copy / "conf", [f"model={name}"]).model)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.fit(x, keras.utils.to_categorical(y, 10), batch_size=64, epochs=1, verbose=0)
        model.save(project_copy / f"{name}.keras")
        files.append(project_copy / f"{name}.keras")
    return project_copy, files, mnist_raw


def test_one_model_is_not_an_ensemble(members):
    project, files, raw = members
    done = run([*ENSEMBLE, "--models", files[0].name], project, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --models: an ensemble needs at least 2 models"
    assert not (project / "outputs" / "ensemble").exists()  # nothing written
    assert not (project / "mlruns" / "mlflow.db").exists()
    missing = run([*ENSEMBLE, "--models", "models:/nope/1", files[0].name], project, check=False)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "error: --models='models:/nope/1': cannot load model" in missing.stderr


def test_an_ensemble_is_one_model_that_averages_its_members(members):
    project, files, raw = members
    done = run([*ENSEMBLE, "--models", *[f.name for f in files]], project)
    assert "ensemble: 2 models" in done.stdout

    x_test, y_test = splits.load(project / "data" / "prepared", "test")
    ensemble = keras.models.load_model(project / "outputs" / "ensemble" / "model.keras")
    mean = np.mean([keras.models.load_model(f).predict(x_test, verbose=0) for f in files], axis=0)
    assert np.allclose(ensemble.predict(x_test, verbose=0), mean, atol=1e-5)
    result = json.loads((project / "outputs" / "ensemble" / "metrics.json").read_text())
    assert result["test"]["accuracy"] == pytest.approx((mean.argmax(1) == y_test).mean())

    client = MlflowClient(store(project))
    experiment = client.get_experiment_by_name("digitpipe")
    found = client.search_runs([experiment.experiment_id], "tags.architecture = 'ensemble_of_2'")
    (logged,) = found
    assert logged.data.metrics["val_accuracy_final"] == pytest.approx(result["val_accuracy"])
    assert "test_accuracy" in logged.data.metrics
    champion = client.get_model_version_by_alias("digit-classifier", "champion")
    assert champion.tags["run_id"] == logged.info.run_id  # the only version: champion

    # an alias is read as the version it points at now; a model inside it given again, or a
    # member given twice, is refused
    again = [*ENSEMBLE, "--models", "models:/digit-classifier@champion", files[0].name]
    inside = run(again, project, check=False)
    assert inside.returncode == 2
    lenet5 = files[0].resolve()  # a file member is recorded by its full path
    assert inside.stderr.strip() == (
        f"error: --models: {lenet5} is given alone and inside models:/digit-classifier/"
        f"{champion.version}: it would weigh double"
    )
    same = [*ENSEMBLE, "--models", files[0].name, f"./{files[0].name}"]
    twice = run(same, project, check=False)
    assert twice.returncode == 2
    assert twice.stderr.strip() == f"error: --models: {lenet5} given twice: it would weigh double"

    champion_uri = "scans.model_uri=models:/digit-classifier@champion"
    run(["python", "-m", "digitpipe.commands.params", *tiny_overrides(raw), champion_uri], project)
    scans = run(["python", "-m", "digitpipe.stages.predict_scans"], project)
    assert "30 images, 0 errors" in scans.stdout


def test_an_ensemble_is_built_from_trained_models_never_from_earlier_ensembles(members):
    project, files, raw = members
    run(["python", "-m", "digitpipe.commands.params", *tiny_overrides(raw)], project)
    for _ in range(2):  # two ensemble versions, whatever the tests before left
        run([*ENSEMBLE, "--models", *[f.name for f in files]], project)
    client = MlflowClient(store(project))
    registered = client.search_model_versions("name = 'digit-classifier'")
    assert len(registered) >= 2 and all("members" in v.tags for v in registered)
    done = run([*ENSEMBLE, "--top", "2"], project, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --top 2: only 0 trained versions of 'digit-classifier' on this data split"
    )


def test_every_member_was_trained_on_the_split_it_is_scored_on_and_counts_once(members):
    """The ensemble's validation accuracy picks the champion: a member trained on another split
    may have trained on these validation images, and a model inside an earlier ensemble and
    given again would weigh double. Both are refused, from the runs' own records."""
    project, files, raw = members
    params = ["python", "-m", "digitpipe.commands.params", *tiny_overrides(raw)]
    stages = [["python", "-m", f"digitpipe.stages.{s}"] for s in ("prepare", "train", "evaluate")]
    client = MlflowClient(store(project))
    versions = []
    for seed in ("42", "7"):  # the same recipe on two splits: two registered versions
        run([*params, f"data.split_seed={seed}"], project)
        for stage in stages:
            run(stage, project)
        newest = max(client.search_model_versions("name = 'digit-classifier'"),
                     key=lambda v: int(v.version))  # fmt: skip
        versions.append(f"models:/digit-classifier/{newest.version}")
    same, other = versions
    # params.yaml (and data/prepared) are the split of seed 7 now
    refused = run([*ENSEMBLE, "--models", same, files[0].name], project, check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: --models: {same} was trained on another split (data.split_seed=42; "
        "params.yaml: data.split_seed=7): data/prepared's validation images may be its "
        "training images"
    )
    client.set_registered_model_alias("digit-classifier", "mine", other.rsplit("/", 1)[1])
    built = run([*ENSEMBLE, "--models", "models:/digit-classifier@mine", files[0].name], project)
    lenet5 = files[0].resolve()
    assert built.stdout.startswith(f"note: {lenet5}: its split is not recorded; ")
    ensemble = max(client.search_model_versions("name = 'digit-classifier'"),
                   key=lambda v: int(v.version))  # fmt: skip
    assert ensemble.tags["members"] == f"{other} {lenet5}"  # the alias as its version
    ensemble_uri = f"models:/digit-classifier/{ensemble.version}"
    doubled = run([*ENSEMBLE, "--models", ensemble_uri, other], project, check=False)
    assert doubled.returncode == 2
    assert doubled.stderr.strip() == (
        f"error: --models: {other} is given alone and inside {ensemble_uri}: it would weigh double"
    )
    # one trained model under two URIs is one model
    version = client.get_model_version("digit-classifier", other.rsplit("/", 1)[1])
    by_run = f"runs:/{version.tags['run_id']}/seed_blog_cnn"
    one = run([*ENSEMBLE, "--models", by_run, other], project, check=False)
    assert one.stderr.strip() == (
        f"error: --models: {by_run} and {other} are one model: it would weigh double"
    )
    # --top keeps to this split's trained models; an ensemble registered before versions
    # carried `members` is known by its run's
    client.delete_model_version_tag("digit-classifier", ensemble.version, "members")
    top = run([*ENSEMBLE, "--top", "2"], project, check=False)
    assert top.stderr.strip() == (
        "error: --top 2: only 1 trained version of 'digit-classifier' on this data split"
    )
