"""Training that survives: kill it mid-epoch, run it again, and it continues."""

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.project import BIN, run, tiny_overrides

pytestmark = pytest.mark.slow


def test_killed_training_resumes_where_it_stopped(project_copy, mnist_raw):
    overrides = [
        *tiny_overrides(mnist_raw),
        "data.train_limit=4000",
        "train.epochs=4",
        "mlflow.log_model=false",
    ]
    run(["python", "-m", "digitpipe.commands.params", *overrides], project_copy)
    run(["python", "-m", "digitpipe.stages.prepare"], project_copy)
    backup = project_copy / "outputs" / "train" / "backup"
    metadata = backup / "checkpoint" / "training_metadata.json"

    def epochs_backed_up() -> int:
        try:
            return json.loads(metadata.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            return 0

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    first = subprocess.Popen(
        ["python", "-m", "digitpipe.stages.train"],
        cwd=project_copy,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None and epochs_backed_up() < 2:
        time.sleep(0.02)
    assert first.poll() is None, "training ended before it could be interrupted"
    first.send_signal(signal.SIGKILL)  # early in epoch 3: mid-epoch
    first.wait()
    done_before = epochs_backed_up()
    assert 2 <= done_before < 4

    (project_copy / "outputs" / "train" / "mlflow_run.json").unlink()  # as `dvc repro` would
    second = run(["python", "-m", "digitpipe.stages.train"], project_copy)
    assert "resuming" in second.stdout
    epochs = pd.read_csv(project_copy / "outputs" / "train" / "history.csv")["epoch"].tolist()
    assert epochs == list(range(4))  # continued, not restarted, and nothing written twice
    summary = json.loads((project_copy / "outputs" / "train" / "summary.json").read_text())
    # the summary covers the whole training, not just the epochs after the restart
    history = pd.read_csv(project_copy / "outputs" / "train" / "history.csv")
    assert summary["epochs_run"] == 4
    assert summary["train_time_s"] == pytest.approx(history["epoch_time_s"].sum(), abs=0.01)
    assert summary["best_val_accuracy"] == pytest.approx(history["val_accuracy"].max(), abs=1e-5)
    assert not (project_copy / "outputs" / "train" / "backup").exists()

    client = MlflowClient(f"sqlite:///{project_copy / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("digitpipe").experiment_id])
    assert len(runs) == 1  # the interrupted run was reopened, not duplicated
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "accuracy")]
    assert sorted(set(steps)) == list(range(4))


def test_changed_config_does_not_resume_an_old_backup(project_copy, mnist_raw):
    from digitpipe import tracking
    from digitpipe.config import compose
    from digitpipe.paths import Paths
    from digitpipe.resume import prepare_backup, resumable_run_id

    paths = Paths(workspace=project_copy, root=project_copy)
    cfg = compose(project_copy / "conf", tiny_overrides(mnist_raw))
    experiment_id = tracking.configure(cfg, paths)
    killed = MlflowClient().create_run(experiment_id).info.run_id  # a training killed mid-run
    prepare_backup(cfg, paths, killed)
    assert resumable_run_id(cfg, paths) == killed
    cfg.train.learning_rate = 0.01
    assert resumable_run_id(cfg, paths) is None
    assert not paths.backup_dir.exists()
    # it will never resume: ended as superseded, not left RUNNING for ever
    abandoned = MlflowClient().get_run(killed)
    assert abandoned.info.status == "KILLED" and abandoned.data.tags["superseded"] == "true"


KILLED_AS_IT_OPENS_ITS_RUN = """
import os, signal, sys
from pathlib import Path
from digitpipe import tracking
from digitpipe.config import load_params
from digitpipe.paths import Paths
from digitpipe.resume import attempt_key

paths = Paths(workspace=Path.cwd(), root=Path.cwd())
cfg = load_params(paths.params_file)
key = lambda: attempt_key(cfg, paths)  # noqa: E731
with tracking.start_pipeline_run(cfg, paths, ["train"], attempt=key) as run:
    print(run.info.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # before train records the run in its backup
"""


def test_a_training_killed_as_it_opens_its_run_reopens_that_run_not_a_second(
    project_copy, mnist_raw
):
    """A sweep's worker killed between MLflow creating the run and train writing its id down
    left an orphan beside a new run; the attempt key, written first, finds the run again."""
    overrides = [*tiny_overrides(mnist_raw), "mlflow.log_model=false"]
    run(["python", "-m", "digitpipe.commands.params", *overrides], project_copy)
    run(["python", "-m", "digitpipe.stages.prepare"], project_copy)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    killed = subprocess.run(
        ["python", "-c", KILLED_AS_IT_OPENS_ITS_RUN], cwd=project_copy, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    opened = killed.stdout.split()[-1]
    (project_copy / "outputs" / "train" / "mlflow_run.json").unlink()  # as `dvc repro` would

    run(["python", "-m", "digitpipe.stages.train"], project_copy)
    client = MlflowClient(f"sqlite:///{project_copy / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("digitpipe").experiment_id])
    assert [r.info.run_id for r in runs] == [opened]
    assert runs[0].data.params["train.epochs"] == "1"
    assert "train_time_s" in runs[0].data.metrics
