"""The champion alias: the best version by validation accuracy (ties: fewer parameters), even
when jobs on several machines raced for it and the last writer was not the best."""

import mlflow
from mlflow.tracking import MlflowClient

from digitpipe.paths import Paths
from digitpipe.tracking.registry import CHAMPION, register_and_promote, settle_champion

SPLIT = {"data.val_size": "5000", "data.split_seed": "42", "data.train_limit": "None"}


def test_a_sweep_end_moves_the_champion_to_the_best_validation_accuracy(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    client = MlflowClient()
    client.create_registered_model("digits")
    scores = [("0.990000", "900", "0.9950"), ("0.995000", "500", "0.9900"),
              ("0.995000", "400", "0.9800"), ("0.980000", "100", "0.9990")]  # fmt: skip
    for val, params, test in scores:
        source = tmp_path / f"model-{params}"
        source.mkdir()
        tags = {"val_accuracy": val, "params": params, "test_accuracy": test}
        client.create_model_version("digits", source.as_uri(), tags=tags)
    client.set_registered_model_alias("digits", CHAMPION, "4")  # a race's last writer won

    assert settle_champion("digits") == "3"  # best validation accuracy, then fewer parameters
    assert str(client.get_model_version_by_alias("digits", CHAMPION).version) == "3"
    assert settle_champion("digits") == "3"  # settling again changes nothing


def test_no_versions_no_champion(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    MlflowClient().create_registered_model("empty")
    assert settle_champion("empty") is None


def test_a_tie_keeps_the_champion_and_the_first_registered_of_tied_challengers(tmp_path):
    """The alias moves only to a version that beats the champion; equal is not better."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    client = MlflowClient()
    client.create_registered_model("digits")
    for k in range(3):  # three runs, same validation accuracy and size
        source = tmp_path / f"model-{k}"
        source.mkdir()
        tags = {"val_accuracy": "0.832000", "params": "500", "test_accuracy": "0.8"}
        client.create_model_version("digits", source.as_uri(), tags=tags)
    assert settle_champion("digits") == "1"  # no champion yet: the first of the tied
    client.set_registered_model_alias("digits", CHAMPION, "2")
    assert settle_champion("digits") == "2"  # a tie leaves the champion where it is


def test_a_dataset_another_job_logged_first_is_linked_not_a_crash(tmp_path, monkeypatch):
    """Two parallel jobs of a sweep on a team server both insert the same MNIST split; the
    loser got PostgreSQL's duplicate key. Its retry finds the row and links it to its run."""
    import numpy as np

    from digitpipe.tracking import runs

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    real, calls = mlflow.log_input, []

    def first_loses(dataset, context=None):
        calls.append(context)
        if len(calls) == 1:
            raise mlflow.exceptions.MlflowException(
                'duplicate key value violates unique constraint "dataset_pk"'
            )
        return real(dataset, context=context)

    monkeypatch.setattr(mlflow, "log_input", first_loses)
    dataset = mlflow.data.from_numpy(np.zeros((4, 2)), source="mnist-val.npz", name="mnist-val")
    with mlflow.start_run() as run:
        runs.log_input_raced(dataset, "validation")
    logged = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert calls == ["validation", "validation"]
    assert [d.dataset.name for d in logged] == ["mnist-val"]


def test_registering_says_nothing_of_its_own_and_leaves_mlflows_lines_on(tmp_path, capfd):
    """The evaluate stage says in one line what it registered; MLflow's "Registered model ...
    already exists. Creating a new version of this model..." and "Created version ..." stay out
    of the pipeline's output, and MLflow speaks again afterwards."""
    from mlflow.utils import logging_utils

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    paths = Paths(workspace=tmp_path, root=tmp_path)
    versions = []
    for k, val in enumerate((0.5, 0.6)):
        source = tmp_path / f"model-{k}"
        source.mkdir()
        versions.append(register_and_promote(paths, "digits", source.as_uri(),
                                             {"val_accuracy": val}, 100, f"run{k}",
                                             split=SPLIT))  # fmt: skip
    said = capfd.readouterr()
    assert versions == [("1", "now champion"), ("2", "now champion")]
    assert "Registered model" not in said.err + said.out
    assert "Created version" not in said.err + said.out
    assert logging_utils.MLFLOW_LOGGING_STREAM.enabled


def test_accuracies_on_another_split_are_not_compared(tmp_path):
    """100 % of 20 validation images would beat 99 % of 5,000: a version validated on another
    split than the champion's is registered, tagged with its split, and left out of the
    champion's choice, at registration and when a sweep settles the alias."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    paths = Paths(workspace=tmp_path, root=tmp_path)
    tiny = SPLIT | {"data.val_size": "20"}
    said = []
    for k, (val, split) in enumerate([(0.99, SPLIT), (1.0, tiny), (0.995, SPLIT)]):
        source = tmp_path / f"model-{k}"
        source.mkdir()
        said.append(register_and_promote(paths, "digits", source.as_uri(), {"val_accuracy": val},
                                         100, f"run{k}", split=split))  # fmt: skip
    assert said == [
        ("1", "now champion"),
        ("2", "not compared with champion v1: validated on another split, data.val_size=20 "
              "here, 5000 there"),
        ("3", "now champion"),
    ]  # fmt: skip
    client = MlflowClient()
    assert client.get_model_version("digits", "2").tags["split"] == (
        "data.val_size=20 data.split_seed=42 data.train_limit=None"
    )
    client.set_registered_model_alias("digits", CHAMPION, "1")  # a race's last writer won
    assert settle_champion("digits", SPLIT) == "3"  # never the 100 % of 20 images


def test_a_split_is_read_from_the_run_of_an_untagged_version_and_compared_by_value(tmp_path):
    """Versions registered before the `split` tag: their run's params say it; a champion whose
    split nobody recorded leaves the choice to the sweep's split, never to 20 images."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    client = MlflowClient()
    client.create_registered_model("digits")

    def version(val: str, tags: dict[str, str]) -> str:
        source = tmp_path / f"model-{val}"
        source.mkdir()
        tags = {"val_accuracy": val, "params": "100"} | tags
        return str(client.create_model_version("digits", source.as_uri(), tags=tags).version)

    with mlflow.start_run() as old_run:  # logged by the pipeline as every run's config
        mlflow.log_params({"data.val_size": 5000, "data.split_seed": 42, "data.train_limit": None})
    legacy = version("0.990000", {"run_id": old_run.info.run_id})  # before the tag
    client.set_registered_model_alias("digits", CHAMPION, legacy)
    paths = Paths(workspace=tmp_path, root=tmp_path)
    reordered = dict(reversed(list(SPLIT.items())))  # the same split, keys in another order
    source = tmp_path / "model-new"
    source.mkdir()
    assert register_and_promote(paths, "digits", source.as_uri(), {"val_accuracy": 0.995}, 100,
                                "r", split=reordered) == ("2", "now champion")  # fmt: skip
    tiny = version("1.000000", {"split": "data.val_size=20 data.split_seed=42"})
    forgotten = version("0.980000", {})  # its run is gone: its split is not recorded
    client.set_registered_model_alias("digits", CHAMPION, forgotten)
    assert settle_champion("digits", SPLIT) == "2"  # not the 100 % of 20 images (v3)
    assert tiny == "3"
