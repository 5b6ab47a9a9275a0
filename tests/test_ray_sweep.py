"""Sweeps on a real Ray cluster (head + a second worker node on 127.0.0.1) logging to a real
PostgreSQL-backed MLflow server: killing a job's worker mid-sweep leaves the finished jobs
intact, and rerunning the sweep runs only what did not finish."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.project import BIN, copy_project, run, tiny_overrides
from tests.helpers.ray_cluster import RayCluster, job_workers
from tests.helpers.servers import TrackingServer

pytestmark = pytest.mark.slow

EXPERIMENT = "ray-sweep"


@pytest.fixture(scope="module")
def cluster():
    ray = RayCluster(cpus_per_node=1)
    yield ray
    ray.stop()


@pytest.fixture(scope="module")
def server():
    tracking = TrackingServer()
    yield tracking
    tracking.stop()


def sweep_command(cluster, mnist_raw, sweep_dir) -> list[str]:
    return [
        "python", "-m", "digitpipe.commands.sweep", "-m",
        "hydra/launcher=ray_jobs",
        f"hydra.launcher.ray.init.address={cluster.address}",
        "hydra.launcher.ray.remote.max_retries=0",  # a killed job stays dead: the rerun's work
        *tiny_overrides(mnist_raw),
        "model=seed_blog_cnn,seed_lab_cnn",
        "train.epochs=1,2",
        f"mlflow.experiment_name={EXPERIMENT}",
        "mlflow.registered_model=ray-classifier",
        f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip


def children(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], "tags.architecture != ''")
    return [r for r in runs if r.data.tags.get("superseded") != "true"]


def test_a_sweep_on_ray_survives_a_killed_worker_and_resumes(tmp_path, mnist_raw, cluster, server):
    project = copy_project(tmp_path / "project")
    sweep_dir = tmp_path / "sweep"
    env = {
        **os.environ,
        **cluster.env,
        "MLFLOW_TRACKING_URI": server.uri,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    client = MlflowClient(server.uri)
    first = subprocess.Popen(
        sweep_command(cluster, mnist_raw, sweep_dir), cwd=project, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    killed = None
    deadline = time.time() + 600
    while first.poll() is None and time.time() < deadline and killed is None:
        finished = [c for c in children(client) if c.info.status == "FINISHED"]
        workers = job_workers()
        if finished and workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)  # one job's Ray worker dies mid-sweep
        time.sleep(1)
    output, _ = first.communicate(timeout=600)
    assert killed is not None, output
    assert first.returncode != 0  # the sweep reports the lost job
    finished = [c for c in children(client) if c.info.status == "FINISHED"]
    done_before = {c.info.run_id for c in finished}
    assert 1 <= len(done_before) < 4

    again = run(sweep_command(cluster, mnist_raw, sweep_dir), project, env=env, timeout=900)
    reported = again.stdout + again.stderr
    # (Ray may forward a worker's line more than once: compare the jobs, not the lines)
    skipped = set(re.findall(r"job \d+ \((.*?)\): skipped, finished", reported))
    assert skipped == {c.data.tags["hydra_overrides"] for c in finished}, reported[-3000:]
    runs = children(client)
    assert sorted(r.info.run_name for r in runs) == [
        "seed_blog_cnn-e1", "seed_blog_cnn-e2", "seed_lab_cnn-e1", "seed_lab_cnn-e2",
    ]  # fmt: skip
    assert all(r.info.status == "FINISHED" for r in runs)
    assert done_before <= {r.info.run_id for r in runs}  # finished jobs were left as they were
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (parent,) = client.search_runs([experiment.experiment_id], "tags.sweep_dir != ''")
    assert parent.info.status == "FINISHED"
    for child in runs:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert steps == list(range(int(child.data.params["train.epochs"])))
        assert "evaluate/confusion_matrix.png" in {
            a.path for a in client.list_artifacts(child.info.run_id, "evaluate")
        }
        assert child.data.tags["threads"] == "1"  # TensorFlow matched the 1 CPU Ray reserved
    assert client.get_model_version_by_alias("ray-classifier", "champion")


def test_every_jobs_own_line_reaches_the_sweep_driver_unfolded():
    """Ray folds worker lines that differ only in words with digits ("job 0 (...): skipped",
    "job 2 (...): skipped") into one; a sweep's driver turns that off before Ray loads."""
    check = (
        "import digitpipe.commands.sweep\n"
        "from ray._private.ray_constants import RAY_DEDUP_LOGS\n"
        "print(RAY_DEDUP_LOGS)"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_DEDUP_LOGS"}
    result = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
