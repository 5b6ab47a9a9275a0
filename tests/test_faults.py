"""The fault matrix: every user mistake is one line naming the key, file or value at fault, a
non-zero exit, and nothing lost: params.yaml, outputs/ and the MLflow store stay as they were."""

import hashlib
import shutil
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.helpers.project import BIN, copy_project, run, store, tiny_overrides

pytestmark = pytest.mark.slow

PARAMS = ["python", "-m", "digitpipe.commands.params"]
PREPARE = ["python", "-m", "digitpipe.stages.prepare"]
TRAIN = ["python", "-m", "digitpipe.stages.train"]
PREDICT = ["python", "-m", "digitpipe.stages.predict_scans"]
COMPARE = ["python", "-m", "digitpipe.commands.compare"]


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_raw):
    """A project copy after one successful tiny `dvc repro`: outputs and a store to protect."""
    dest = copy_project(tmp_path_factory.mktemp("faults") / "project")
    run([*PARAMS, *tiny_overrides(mnist_raw)], dest)
    run(["dvc", "repro", "prepare", "train", "evaluate", "predict-scans"], dest)
    return dest


def snapshot(project: Path) -> dict:
    """What must survive a mistake: every file's content and the store's runs and versions."""
    files = [project / "params.yaml", *sorted((project / "outputs").rglob("*"))]
    digests = {
        str(f.relative_to(project)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in files
        if f.is_file() and not f.name.endswith(".lock")
    }
    client = MlflowClient(store(project))
    experiment = client.get_experiment_by_name("digitpipe")
    runs = sorted(
        (r.info.run_id, r.info.status) for r in client.search_runs([experiment.experiment_id])
    )
    versions = len(client.search_model_versions("name = 'digit-classifier'"))
    return {"files": digests, "runs": runs, "versions": versions}


def edited_params(project: Path, edit) -> str:
    """params.yaml with one edit applied; returns the original text to restore."""
    original = (project / "params.yaml").read_text()
    params = OmegaConf.load(project / "params.yaml")
    edit(params)
    (project / "params.yaml").write_text(OmegaConf.to_yaml(params))
    return original


def drop(key: str):
    return lambda p: p.pop(key)


def setter(dotted: str, value):
    return lambda p: OmegaConf.update(p, dotted, value, force_add=True)


def bad_yaml(project: Path) -> str:
    original = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(original.replace("train:", "train: [", 1))
    return original


# (id, command, params.yaml edit or None, env, expected words in the one line)
CASES = [
    ("epochs-zero", [*PARAMS, "train.epochs=0"], None, {}, "train.epochs=0 is invalid"),
    ("epochs-text", [*PARAMS, "train.epochs=five"], None, {}, "train.epochs"),
    ("batch-negative", [*PARAMS, "train.batch_size=-1"], None, {}, "train.batch_size=-1"),
    ("key-typo", [*PARAMS, "+train.epoch=3"], None, {}, "train.epoch"),
    (
        "key-typo-no-plus",
        [*PARAMS, "train.epoch=3"],
        None,
        {},
        "train.epoch (did you mean train.epochs?)",
    ),
    (
        "group-typo",
        [*PARAMS, "trian.epochs=3"],
        None,
        {},
        "unknown key trian.epochs (did you mean train.epochs?)",
    ),
    ("unknown-model", [*PARAMS, "model=foo"], None, {}, "model/foo"),
    ("train-limit", [*PARAMS, "data.train_limit=50"], None, {}, "data.train_limit=50"),
    ("precision", [*PARAMS, "train.mixed_precision=bf16"], None, {}, "train.mixed_precision"),
    ("confidence", [*PARAMS, "scans.min_confidence=2"], None, {}, "scans.min_confidence=2.0"),
    ("blur", [*PARAMS, "train.augment.blur=2"], None, {}, "train.augment.blur=2.0"),
    ("warmup", [*PARAMS, "train.warmup_epochs=9"], None, {}, "train.warmup_epochs=9"),
    ("patience", [*PARAMS, "train.early_stopping_patience=0"], None, {}, "early_stopping"),
    ("no-layers", [*PARAMS, "model.layers=[]"], None, {}, "model.layers"),
    ("delete-null", [*PARAMS, "~scans.model_uri"], None, {}, "nothing to delete, scans.model_uri"),
    # what only a stage would find is found before params.yaml is written, too
    ("params-optimizer", [*PARAMS, "train.optimizer=adamm"], None, {}, "not a Keras optimizer"),
    ("params-scans-dir", [*PARAMS, "scans.dir=no/such"], None, {}, "/no/such is not a folder"),
    ("params-model-uri", [*PARAMS, "scans.model_uri=models:/x@y"], None, {}, "cannot load model"),
    ("stage-argument", [*TRAIN, "train.epochs=1"], None, {}, "a stage takes no arguments"),
    ("val-size", PREPARE, setter("data.val_size", 100000), {}, "data.val_size=100000"),
    ("no-model-section", TRAIN, drop("model"), {}, "missing key model"),
    ("invalid-yaml", TRAIN, "bad-yaml", {}, "not valid YAML at line"),
    ("kernel-40", TRAIN, setter("model.layers.0.kernel_size", 40), {}, "does not fit its input"),
    ("layer-type", TRAIN, setter("model.layers.0.type", "Conv9D"), {}, "no such keras layer"),
    ("optimizer", TRAIN, setter("train.optimizer", "adamm"), {}, "not a Keras optimizer"),
    ("loss", TRAIN, setter("train.loss", "hingee"), {}, "not a Keras loss"),
    ("layer-arg", TRAIN, setter("model.layers.0.filterz", 3), {}, "model.layers[0] (Conv2D)"),
    ("no-scans-dir", PREDICT, setter("scans.dir", "no/such/folder"), {}, "is not a folder"),
    ("model-uri", PREDICT, setter("scans.model_uri", "models:/nope@x"), {}, "cannot load model"),
    (
        "server-down",
        TRAIN,
        None,
        {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"},
        "http://127.0.0.1:1 is not usable",
    ),
    (
        "ensemble-file",
        ["python", "-m", "digitpipe.commands.ensemble", "--models", "a.keras", "b.keras"],
        None,
        {},
        "--models: a.keras: no such file",
    ),
    ("no-experiment", [*COMPARE, "--experiment", "nope"], None, {}, "no experiment named 'nope'"),
    ("no-sweep", [*COMPARE, "--sweep", "nope"], None, {}, "--sweep nope: no such sweep"),
    ("no-sweep-folder", [*COMPARE, "--sweep", "outputs"], None, {}, "holds no sweep"),
]


@pytest.mark.parametrize(("command", "edit", "env", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_mistake_is_one_line_and_loses_nothing(project, command, edit, env, expected):
    before = snapshot(project)
    original = None
    if edit == "bad-yaml":
        original = bad_yaml(project)
    elif edit is not None:
        original = edited_params(project, edit)
    started = time.perf_counter()
    try:
        done = run(command, project, env=env, check=False, timeout=120)
    finally:
        if original is not None:
            (project / "params.yaml").write_text(original)
    seconds = time.perf_counter() - started
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert expected in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert snapshot(project) == before
    if env:
        assert seconds < 30  # MLflow's own short HTTP timeouts, not minutes of retries


def test_make_exp_checks_its_overrides_before_dvc_removes_any_output(project, mnist_raw):
    """DVC deletes a stage's outputs before running it: a bad value that only the stage caught
    would cost the last trained model. `make exp` rejects it first, and runs a good one."""
    make = ["make", "-s", "exp", f"VENV={BIN.parent}"]
    before = snapshot(project)
    done = run([*make, "S=train.epochs=-1"], project, check=False)
    errors = [line for line in done.stderr.splitlines() if "***" not in line]  # make's own
    assert done.returncode != 0
    assert errors == ["error: config: train.epochs=-1 is invalid: must be >= 1"]
    assert snapshot(project) == before
    # the scans folder is read as predict-scans will, before DVC starts
    done = run([*make, f"S=scans.dir={project / 'nope'}"], project, check=False)
    errors = [line for line in done.stderr.splitlines() if "***" not in line]
    assert errors == [f"error: scans.dir: {project / 'nope'} is not a folder"]
    assert snapshot(project) == before
    # and so is a model the store does not have; one it has passes
    good = [*PARAMS, "--check", "scans.model_uri=models:/digit-classifier@champion"]
    assert run(good, project).stdout.strip() == "config is valid"
    done = run([*make, "S=scans.model_uri=models:/digit-classifier@nope"], project, check=False)
    errors = [line for line in done.stderr.splitlines() if "***" not in line]
    assert len(errors) == 1 and errors[0].startswith(
        "error: scans.model_uri='models:/digit-classifier@nope': cannot load model: "
    ), errors
    assert snapshot(project) == before

    # DVC composes params.yaml from conf/ and -S only: the tiny data must be named again;
    # each override reaches DVC whole, a folder's name with a space in it too
    mine = project / "my scans"
    shutil.copytree(project / "data" / "scans", mine)
    tiny = " ".join(tiny_overrides(mnist_raw))
    run([*make, f"S={tiny} scans.gallery_max=5 'scans.dir={mine}'"], project)
    params = OmegaConf.load(project / "params.yaml")
    assert params.scans.gallery_max == 5 and params.scans.dir == str(mine)
    assert (
        snapshot(project)["files"]["outputs/train/model.keras"]
        == (before["files"]["outputs/train/model.keras"])
    )
