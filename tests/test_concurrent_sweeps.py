"""Two sweeps of the same job started in the same second on a fresh store: nothing collides.
(Parallel jobs inside one sweep are test_sweep's.) Were their folders one, the second job would
resume the first one's training backup."""

import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.project import BIN, run, store, tiny_overrides

pytestmark = pytest.mark.slow


def test_two_parallel_sweeps_started_at_once_never_collide(project_copy, mnist_raw):
    command = [
        "python", "-m", "digitpipe.commands.sweep", "-m",
        *tiny_overrides(mnist_raw),
        "data.train_limit=1500", "data.val_size=300",
        "model=seed_blog_cnn",
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    sweeps = [
        subprocess.Popen(
            command,
            cwd=project_copy,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [s.communicate(timeout=1200)[0] for s in sweeps]
    for sweep, output in zip(sweeps, outputs, strict=True):
        trouble = output.find("Traceback")
        assert sweep.returncode == 0 and trouble < 0, output[trouble - 300 :][:4000]

    folders = sorted((project_copy / "multirun").glob("*/*"))
    assert len(folders) == 2  # one folder per sweep, even when started in the same second
    client = MlflowClient(store(project_copy))
    experiment = client.get_experiment_by_name("digitpipe")
    parents = client.search_runs([experiment.experiment_id], "tags.sweep_dir != ''")
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    children = client.search_runs([experiment.experiment_id], "tags.architecture != ''")
    assert len(children) == 2
    for parent in parents:
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert len(mine) == 1
    for child in children:
        assert child.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert steps == [0]  # one epoch, logged once: no job resumed another's backup
        assert "test_accuracy" in child.data.metrics and "val_accuracy_final" in child.data.metrics

    def rank(child):
        return child.data.metrics["val_accuracy_final"], -child.data.metrics["parameters"]

    champion = client.get_model_version_by_alias("digit-classifier", "champion")
    assert float(champion.tags["val_accuracy"]) == pytest.approx(
        max(rank(c) for c in children)[0], abs=1e-6
    )
    assert len(client.search_model_versions("name = 'digit-classifier'")) == 2
    run(["python", "-m", "digitpipe.commands.compare"], project_copy)
