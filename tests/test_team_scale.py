"""Team scale with the real parts: a PostgreSQL-backed `mlflow server` with proxied artifacts,
a DVC remote for data and models, and the champion served over REST."""

import shutil
import subprocess

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from digitpipe.mnist import splits
from digitpipe.scans import normalise
from tests.helpers.project import BIN, REPO, copy_project, run, tiny_overrides
from tests.helpers.servers import TrackingServer, free_port, post_json, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    tracking = TrackingServer()
    yield tracking
    tracking.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_raw, server):
    """A tiny `dvc repro` that logs to the shared server."""
    dest = copy_project(tmp_path_factory.mktemp("team") / "project")
    run(["python", "-m", "digitpipe.commands.params", *tiny_overrides(mnist_raw)], dest)
    done = run(["dvc", "repro"], dest, env={"MLFLOW_TRACKING_URI": server.uri})
    (dest / "repro.log").write_text(done.stdout + done.stderr)
    return dest


def test_a_pipeline_run_lands_on_the_server_with_artifacts_uploaded_over_http(server, project):
    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("digitpipe")
    (found,) = client.search_runs([experiment.experiment_id])
    # its link once, from the train stage; none of MLflow's "View run" lines or progress bars
    said = (project / "repro.log").read_text()
    link = f"{server.uri}/#/experiments/{experiment.experiment_id}/runs/{found.info.run_id}"
    assert said.count(f"train: MLflow run {link}\n") == 1
    assert "View run" not in said
    assert found.info.status == "FINISHED"
    assert found.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied, not a path
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val_accuracy")] == [0]
    names = {a.path for a in client.list_artifacts(found.info.run_id, "evaluate")}
    assert "evaluate/confusion_matrix.png" in names
    assert list(server.artifacts.rglob("confusion_matrix.png"))  # stored by the server
    assert not list((project / "mlruns").rglob("confusion_matrix.png"))  # nothing client-side
    champion = client.get_model_version_by_alias("digit-classifier", "champion")
    assert champion.tags["run_id"] == found.info.run_id


def test_a_model_read_from_the_server_comes_without_progress_bars(
    server, project, tmp_path, mnist_raw
):
    reader = copy_project(tmp_path / "reader")
    champion = "scans.model_uri=models:/digit-classifier@champion"
    run(["python", "-m", "digitpipe.commands.params", *tiny_overrides(mnist_raw), champion],
        reader)  # fmt: skip
    done = run(["python", "-m", "digitpipe.stages.predict_scans"], reader,
               env={"MLFLOW_TRACKING_URI": server.uri})  # fmt: skip
    assert "30 images, 0 errors" in done.stdout
    assert "Downloading artifacts" not in done.stdout + done.stderr
    assert "View run" not in done.stdout


def test_the_champion_answers_rest_requests(server, project):
    port = free_port()
    serving = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            "models:/digit-classifier@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],  # fmt: skip
        env={"MLFLOW_TRACKING_URI": server.uri, "PATH": f"{BIN}:/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ping")
        x_test, y_test = splits.load(project / "data" / "prepared", "test")
        scan = normalise.normalize(
            normalise.load_gray(next((REPO / "data" / "scans").glob("scan_001.*")))
        )
        batch = np.concatenate([x_test[:20], scan[None, ..., None]])
        answer = post_json(f"http://127.0.0.1:{port}/invocations", {"inputs": batch.tolist()})
        probs = np.asarray(answer["predictions"])
        assert probs.shape == (21, 10)
        assert (probs[:20].argmax(1) == y_test[:20]).mean() >= 0.8  # a trained model's answers
        assert 0 <= probs[20].argmax() <= 9
    finally:
        serving.terminate()
        serving.wait(timeout=30)


def test_data_and_models_round_trip_through_a_dvc_remote(project, tmp_path):
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "team", str(remote)], project)
    run(["dvc", "push"], project)
    model = (project / "outputs" / "train" / "model.keras").read_bytes()
    shutil.rmtree(project / ".dvc" / "cache")
    shutil.rmtree(project / "outputs")
    shutil.rmtree(project / "data" / "prepared")
    run(["dvc", "pull"], project)
    assert (project / "outputs" / "train" / "model.keras").read_bytes() == model
    assert (project / "data" / "prepared" / "test.npz").is_file()
    assert "up to date" in run(["dvc", "status"], project).stdout


SERVER = [str(BIN / "python"), "-m", "digitpipe.commands.server"]


def refused_server(*args: str) -> str:
    """A server start that must be refused: exit 2, and its one line on stderr."""
    done = subprocess.run([*SERVER, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    return done.stderr.strip()


def test_a_second_server_on_a_taken_port_is_one_line(tmp_path):
    """`make server` twice (or a server left running): one line, nothing of the first touched."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = refused_server("--port", str(port), "--folder", str(tmp_path / "server"))
    assert said == (
        f"error: --port {port}: in use on 127.0.0.1 (a server already runs there? stop it, "
        "or pass another --port)"
    )
    assert not (tmp_path / "server").exists()


def test_a_second_server_on_the_same_folder_is_refused_and_the_first_keeps_its_database():
    """Two servers on one folder would share its PostgreSQL, and the second would stop it on its
    way out, under the first: the second is refused in one line."""
    import tempfile
    from pathlib import Path

    from digitpipe.commands.server import wait_until_up

    folder = Path(tempfile.mkdtemp(prefix="digitpipe-server-"))  # reachable by postgres
    port, pg_port = free_port(), free_port()
    server = ["--folder", str(folder), "--pg-port", str(pg_port)]
    first = subprocess.Popen(
        [*SERVER, *server, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port)
        assert refused_server(*server, "--port", str(free_port())) == (
            f"error: --folder {folder}: another server uses it (stop that one, or pass another "
            "--folder)"
        )
        assert MlflowClient(f"http://127.0.0.1:{port}").search_experiments()  # still serving
    finally:
        first.terminate()
        first.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
