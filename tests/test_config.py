"""The Hydra config tree: composition, params.yaml drift, and one-line errors."""

import math
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from digitpipe.commands.sweep import check_overrides
from digitpipe.config import compose, flatten, load_params, run_name, validate
from digitpipe.errors import UserError
from digitpipe.paths import Paths
from tests.helpers.project import REPO

MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))


def test_params_yaml_is_the_default_composition():
    """params.yaml is what DVC's Hydra composition writes for conf/ without overrides: the
    committed one, or the working one (after `make params` with no overrides). A user's own
    `make params ARGS=...` changes only the working one, and is no drift."""
    committed = subprocess.run(
        ["git", "show", "HEAD:params.yaml"], cwd=REPO, capture_output=True, text=True
    ).stdout
    versions = [(REPO / "params.yaml").read_text(), *([committed] if committed else [])]
    composed = OmegaConf.to_container(compose(REPO / "conf"))
    assert any(
        OmegaConf.to_container(validate(OmegaConf.create(text))) == composed for text in versions
    ), "params.yaml drifted from conf/: run `make params`"


def test_dvc_hydra_composition_is_enabled():
    assert "enabled = true" in (REPO / ".dvc" / "config").read_text()


def test_default_is_the_seed_blog_recipe():
    cfg = compose(REPO / "conf")
    assert cfg.model.name == "seed_blog_cnn"
    assert (cfg.train.optimizer, cfg.train.batch_size, cfg.train.epochs) == ("adam", 64, 5)
    assert cfg.train.loss == "categorical_crossentropy"
    assert run_name(cfg) == "seed_blog_cnn-e5"


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_validates(model):
    cfg = compose(REPO / "conf", [f"model={model}"])
    assert cfg.model.name == model


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.epochs=0"], "train.epochs=0"),
        (["train.batch_size=-1"], "train.batch_size"),
        (["data.train_limit=50"], "data.train_limit"),
        (["train.epochs=five"], "train.epochs"),
        (["+train.epoch=3"], "train.epoch"),
        (["train.mixed_precision=bf16"], "train.mixed_precision"),
        (["train.warmup_start=0"], "train.warmup_start=0"),
        (["train.warmup_epochs=0.5"], "a warmup needs train.lr_schedule=cosine"),
        (["train.augment.flagged_ones=1.5"], "train.augment.flagged_ones=1.5"),
        (["train.augment.flagged_ones=0.5"], "must be 0 while train.augment.enabled is false"),
        (["train.coarse_digits=1.5"], "train.coarse_digits=1.5"),
        (["train.augment.low_resolution=0.3"], "low_resolution is gone: train.coarse_digits took"),
    ],
)
def test_bad_values_name_the_key(overrides, expected):
    with pytest.raises(UserError) as error:
        compose(REPO / "conf", overrides)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.optimizer=adagradd"], "train.optimizer='adagradd': not a Keras optimizer"),
        (["train.loss=hinge_loss"], "train.loss='hinge_loss': not a Keras loss"),
        (
            ["train.loss=sparse_categorical_crossentropy"],
            "the targets are one-hot over the 10 digits; use 'categorical_crossentropy'",
        ),
        (
            ["train.loss=kl_divergence", "train.label_smoothing=0.1"],
            "train.label_smoothing=0.1: only with train.loss=categorical_crossentropy",
        ),
        (["model.layers.0.type=Conv9D"], "model.layers[0].type='Conv9D': no such keras layer"),
        (["model.layers.0.kernel_size=40"], "model.layers[0] (Conv2D) does not fit its input"),
        (["+model.layers.0.filterz=3"], "model.layers[0] (Conv2D)"),
        (["+train.optimizer_options.adam.beta_one=0.7"], "options.adam={'beta_one': 0.7}"),
        (
            ["train.lr_schedule=cosine", "train.epochs=1", "train.warmup_epochs=0.9999"],
            "train.warmup_epochs=0.9999 leaves no step to decay",
        ),
    ],
)
def test_what_only_keras_knows_fails_as_one_line_when_the_model_is_built(overrides, expected):
    """Keras's own registries are the option lists: checked when train builds the model,
    before any file or MLflow run exists."""
    from digitpipe.stages.train import compiled_model

    cfg = compose(REPO / "conf", overrides)
    with pytest.raises(UserError) as error:
        compiled_model(cfg, train_images=1000)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_model_lists_the_options():
    with pytest.raises(UserError) as error:
        compose(REPO / "conf", ["model=foo"])
    message = str(error.value)
    assert "model/foo" in message and "\n" not in message
    for model in MODELS:
        assert model in message


def test_typo_in_params_yaml_is_one_line(tmp_path):
    params = OmegaConf.to_container(OmegaConf.load(REPO / "params.yaml"))
    params["train"]["epochz"] = 3
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(params))
    with pytest.raises(UserError, match=r"params.yaml: bad key train.epochz"):
        load_params(tmp_path / "params.yaml")


def test_flatten_gives_dotted_mlflow_params():
    flat = flatten(compose(REPO / "conf"))
    assert flat["train.epochs"] == 5
    assert flat["model.layers.0.type"] == "Conv2D"
    assert all(len(str(v)) < 6000 for v in flat.values())


def test_stage_cli_reports_user_error_without_traceback(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    params = OmegaConf.load(REPO / "params.yaml")
    params.train.epochs = 0
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(params))
    done = subprocess.run(
        [sys.executable, "-m", "digitpipe.stages.prepare"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: config: train.epochs=0 is invalid: must be >= 1")


def test_the_fast_preset_learning_rate_is_one_cycle():
    """experiment=fast: a warmup from lr/25 over the first 30 % of its one epoch, the peak at
    train.learning_rate, then a cosine decay to zero at the last step."""
    from digitpipe.stages.train import learning_rate

    cfg = compose(REPO / "conf", ["experiment=fast"])
    steps = 430  # 55,000 images in batches of 128
    schedule = learning_rate(cfg.train, steps)
    rate = [float(schedule(step)) for step in (0, 129, steps // 2, steps)]
    peak = cfg.train.learning_rate
    assert rate[0] == pytest.approx(peak / 25)
    assert rate[1] == pytest.approx(peak)
    assert peak / 25 < rate[2] < peak
    assert rate[3] == pytest.approx(0, abs=1e-9)


def test_optimizer_options_reach_the_keras_optimizer():
    from digitpipe.stages.train import compiled_model

    """Keyed by optimizer: the fast preset's Adam betas reach Adam, and switching the preset to
    SGD leaves them behind instead of failing."""
    model = compiled_model(compose(REPO / "conf", ["experiment=fast"]), train_images=1000)
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # fp16 loss scaling
    assert (optimizer.beta_1, optimizer.beta_2) == (0.7, 0.9)
    sgd = compiled_model(
        compose(REPO / "conf", ["experiment=fast", "train.optimizer=sgd"]), train_images=1000
    )
    assert type(getattr(sgd.optimizer, "inner_optimizer", sgd.optimizer)).__name__ == "SGD"


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "model=seed_blog_cnn,seed_lab_cnn", "train.epochs=5,10"],
        ["-m", "model=glob(*)"],
        ["-m", "model=lenet5,keras_convnet", "train.epochs=2,4", "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2"],
        ["-m", "hparams_search=digitnet_optuna", "train.learning_rate=interval(0.001,0.01)"],
        ["hparams_search=digitnet_optuna", "train.batch_size=64,128"],  # the search sets -m
        ["--multi", "train.epochs=1,2"],  # argparse's abbreviation of --multirun
        ["-m", "hydra/launcher=ray", "model=seed_blog_cnn"],  # the plugin's own Ray launcher
    ],
)  # fmt: skip
def test_the_readme_sweeps_pass_the_sweep_check(argv):
    check_overrides(argv, REPO / "conf")


def test_a_sweep_reads_its_scans_folders_before_any_job_trains(tmp_path):
    """predict-scans runs after training: a folder that is not there would cost every job."""
    argv = ["-m", "train.epochs=1,2", f"scans.dir={tmp_path / 'nope'}"]
    with pytest.raises(UserError, match=rf"^scans.dir: {tmp_path / 'nope'} is not a folder$"):
        check_overrides(argv, REPO / "conf")


@pytest.mark.parametrize(("cluster", "refused"), [(None, True), ("10.0.0.7:6379", False)])
def test_ray_jobs_larger_than_the_ray_started_for_the_sweep_are_refused(
    monkeypatch, cluster, refused
):
    """They would wait for ever. A Ray cluster that ray.init would join (RAY_ADDRESS, or one
    started here with `ray start`) may have more CPUs: then the sweep goes on."""
    import ray._private.services

    monkeypatch.setattr(
        ray._private.services, "get_ray_address_from_environment", lambda addr, tmp: cluster
    )
    argv = ["-m", "hydra/launcher=ray_jobs", "hydra.launcher.ray.remote.num_cpus=999"]
    if not refused:
        check_overrides(argv, REPO / "conf")
        return
    with pytest.raises(
        UserError, match=r"^config: hydra.launcher.ray.remote.num_cpus=999: the Ray"
    ):
        check_overrides(argv, REPO / "conf")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-m", "model=lenet5,seed_lab_cnn", "train.epoch=1"],
         "unknown key train.epoch (did you mean train.epochs?)"),
        (["-m", "model=lenet5,fooo"], "Could not find 'model/fooo'"),
        (["-m", "train.epochs=1,-2"], "train.epochs=-2 is invalid"),
        (["hparams_search=nope"], "hparams_search=nope: no such search (available: digitnet_o"),
        (["hparams_search=digitnet_optuna", "hydra.sweeper.n_trials=0"], "n_trials=0: must be"),
        (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", "train.epochs=1,2"],
         "hydra.launcher.n_jobs=0: must be at least 1"),
        (["-m", "hydra/launcher=joblb", "train.epochs=1,2"],
         "Could not find 'hydra/launcher/joblb' (available: basic, joblib, ray"),
        (["-m", "hydra.launcher.n_jobs=2", "train.epochs=1,2"],
         "unknown key hydra.launcher.n_jobs: BasicLauncher has no such setting (choose one with"),
        (["-m", "hydra.sweeper.n_trials=3"], "unknown key hydra.sweeper.n_trials: BasicSweeper"),
        (["train.epochs=1,2"], "train.epochs=1,2: several values are a sweep: add -m"),
        (["model=a,b"], "model=a,b: several values are a sweep: add -m"),
        (["-m", "~scans.model_uri", "train.epochs=1,2"],
         "~scans.model_uri: nothing to delete, scans.model_uri is null (unset) already"),
        (["-m", "hydra.launcher.ray.init.address=auto"],
         "BasicLauncher has no such setting (choose one with it first: hydra/launcher=ray_jobs)"),
    ],
)  # fmt: skip
def test_a_bad_value_anywhere_in_a_sweep_is_one_line_before_hydra_starts(tmp_path, argv, expected):
    done = subprocess.run(
        [sys.executable, "-m", "digitpipe.commands.sweep", *argv],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config: ")
    assert expected in lines[0]
    assert not (tmp_path / "multirun").exists()


def test_a_tracking_server_gone_mid_run_is_one_line(capsys):
    """Up at the start, gone later: MLflow's HTTP error, not 200 lines of chained tracebacks."""
    from mlflow.exceptions import MlflowException

    from digitpipe.errors import cli

    @cli
    def stage() -> None:
        raise MlflowException(
            "API request to http://127.0.0.1:5001/api/2.0/mlflow/runs/log-batch failed with "
            "exception HTTPConnectionPool(host='127.0.0.1', port=5001)\nmore lines"
        )

    with pytest.raises(SystemExit) as exit_:
        stage()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "error: mlflow: the tracking server stopped answering: API request to "
        "http://127.0.0.1:5001/api/2.0/mlflow/runs/log-batch failed with exception "
        "HTTPConnectionPool(host='127.0.0.1', port=5001)\n"
    )


def test_a_ray_sweep_to_a_cluster_that_is_not_there_is_one_line(monkeypatch):
    import ray._private.services

    def nothing_runs(address, temp_dir):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray._private.services, "get_ray_address_from_environment", nothing_runs)
    argv = ["-m", "hydra/launcher=ray_jobs", "hydra.launcher.ray.init.address=auto"]
    with pytest.raises(UserError, match=r"address=auto: no Ray cluster runs on this machine"):
        check_overrides(argv, REPO / "conf")


def test_a_search_scores_the_model_its_job_keeps(tmp_path):
    """Optuna maximises the validation accuracy of the weights that are saved and registered,
    as the evaluate stage measured it on them; a job without a validation split scores NaN."""
    from digitpipe.commands.sweep import searched_score

    paths = Paths(workspace=tmp_path, root=tmp_path)
    assert math.isnan(searched_score(paths))
    paths.evaluate_dir.mkdir(parents=True)
    paths.evaluate_metrics_file.write_text('{"test": {"accuracy": 0.2}}')
    assert math.isnan(searched_score(paths))
    paths.evaluate_metrics_file.write_text('{"test": {"accuracy": 0.2}, "val": {"accuracy": 0.1}}')
    assert searched_score(paths) == 0.1


def test_a_search_is_refused_where_it_would_be_one_training():
    """params.yaml holds one configuration: hparams_search there would train once, no search."""
    command = ["-m", "digitpipe.commands.params", "--check", "hparams_search=digitnet_optuna"]
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: hparams_search=digitnet_optuna: a search runs many")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("~scans.model_uri", "~scans.model_uri: nothing to delete, scans.model_uri is null"),
        ("~scans.model_url", "unknown key scans.model_url (did you mean scans.model_uri?)"),
    ],
)
def test_deleting_a_key_that_is_null_or_unknown_is_one_line(override, message):
    """Hydra cannot delete a null value (it reads as no value) and says "does not exist"."""
    command = ["-m", "digitpipe.commands.params", "--check", override]
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: config: {message}")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.optimizer=adamx", "train.optimizer='adamx': not a Keras optimizer"),
        ("model.layers.0.filters=-3", "model.layers[0] (Conv2D): Invalid value for argument"),
    ],
)
def test_make_exp_refuses_what_only_keras_knows_before_dvc_starts(override, message):
    """An optimizer Keras lacks or a layer argument it rejects passes every schema rule; the
    check `make exp` runs first builds the model as the train stage will, so DVC never starts
    (it would remove the stage's outputs) and params.yaml stays as it was."""
    before = (REPO / "params.yaml").read_bytes()
    command = ["-m", "digitpipe.commands.params", "--check", override]
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: config: {message}")
    assert len(done.stderr.strip().splitlines()) == 1
    assert (REPO / "params.yaml").read_bytes() == before


def test_make_exps_check_counts_the_training_sets_steps_as_the_train_stage_does():
    """A warm-up of 0.6 of the one epoch leaves hundreds of steps to decay in; the check's
    build must count the training set's steps, not refuse it as if an epoch were one step."""
    command = ["-m", "digitpipe.commands.params", "--check", "experiment=fast",
               "train.warmup_epochs=0.6"]  # fmt: skip
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "config is valid"), done.stderr
