"""A parallel 2x2 sweep into the store MLFLOW_TRACKING_URI names: nothing lost, one parent, a
report, the champion alias on the best model, and all of it visible through a real MLflow server."""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from digitpipe.commands.server import server_env
from tests.helpers.project import BIN, run, tiny_overrides

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest(port: int, endpoint: str, body: dict | None = None) -> dict:
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/{endpoint}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_parallel_sweep_lands_every_run_under_one_parent(project_copy, mnist_raw, tmp_path):
    sweep_dir = project_copy / "multirun" / "2026-01-01" / "00-00-00"
    store = f"sqlite:///{tmp_path / 'team.db'}"
    env = {"MLFLOW_TRACKING_URI": store}
    swept = run(
        [
            "python",
            "-m",
            "digitpipe.commands.sweep",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            *tiny_overrides(mnist_raw),
            "model=seed_blog_cnn,seed_lab_cnn",
            "train.epochs=1,2",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        project_copy,
        env=env,
    )
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("digitpipe")
    parents = client.search_runs([experiment.experiment_id], "tags.sweep_dir != ''")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    sweep_id = parent.data.tags["sweep_id"]
    assert swept.stdout.splitlines()[-1] == (  # what to do next, with the sweep's id
        f"sweep {sweep_id}: FINISHED; its runs side by side: python -m "
        f"digitpipe.commands.compare --sweep {sweep_id}"
    )
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.info.run_name for c in children) == [
        "seed_blog_cnn-e1",
        "seed_blog_cnn-e2",
        "seed_lab_cnn-e1",
        "seed_lab_cnn-e2",
    ]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["sweep_id"] == sweep_id
        epochs = int(child.data.params["train.epochs"])
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert steps == list(range(epochs)), child.info.run_name
        for key in (
            "test_accuracy",
            "test_macro_f1",
            "scan_accuracy",
            "train_time_s",
            "parameters",
        ):
            assert key in child.data.metrics, (child.info.run_name, key)
        files = {a.path for a in client.list_artifacts(child.info.run_id, "evaluate")}
        assert "evaluate/confusion_matrix.png" in files
        job = sweep_dir / child.data.tags["hydra_job"]
        assert (job / "outputs" / "evaluate" / "metrics.json").is_file()
        assert (job / ".hydra" / "overrides.yaml").is_file()
    # a store given by MLFLOW_TRACKING_URI keeps its artifacts beside its database
    assert list((tmp_path / "artifacts").rglob("confusion_matrix.png"))
    assert not list((project_copy / "mlruns").rglob("confusion_matrix.png"))

    # relaunched into its folder with other values, the sweep refuses rather than pass the
    # finished jobs' results off as the new values'
    other = [
        "python", "-m", "digitpipe.commands.sweep", "-m", *tiny_overrides(mnist_raw),
        "model=seed_blog_cnn,seed_lab_cnn", "train.epochs=3,4", f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    recorded = (sweep_dir / "multirun.yaml").read_bytes()
    refused = run(other, project_copy, env=env, check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip() == (
        f"error: hydra.sweep.dir={sweep_dir}: this sweep ran train.epochs=1,2, not "
        "train.epochs=3,4: resume a sweep with its own values, or start a new one (no "
        "hydra.sweep.dir)"
    )
    assert len(client.search_runs([experiment.experiment_id], "tags.architecture != ''")) == 4
    # refused before Hydra starts: the finished sweep's record and parent run stay as they were
    assert (sweep_dir / "multirun.yaml").read_bytes() == recorded
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"

    # the comparison report ranks them and lands on the parent run
    report = run(
        ["python", "-m", "digitpipe.commands.compare", "--sweep", sweep_id], project_copy, env=env
    )
    best = max(
        children,
        key=lambda c: (c.data.metrics["val_accuracy_final"], -c.data.metrics["parameters"]),
    )
    first_row = report.stdout.splitlines()[1]
    assert first_row.lstrip().startswith("★") and best.info.run_id[:12] in first_row
    by_folder = ["python", "-m", "digitpipe.commands.compare", "--sweep", str(sweep_dir)]
    assert run(by_folder, project_copy, env=env).stdout.splitlines()[1] == first_row
    out = project_copy / "reports" / "compare"
    for name in (
        "report.md",
        "runs.csv",
        "accuracy_vs_epochs.png",
        "accuracy_vs_time.png",
        "per_class_error.png",
    ):
        assert (out / name).is_file(), name
    assert len(client.list_artifacts(parent.info.run_id, "compare")) == 5

    # the champion alias points at the best model by validation accuracy (test is only reported)
    champion = client.get_model_version_by_alias("digit-classifier", "champion")
    assert champion.tags["run_id"] == best.info.run_id
    assert len(client.search_model_versions("name = 'digit-classifier'")) == 4

    # predict-scans can use the champion instead of the pipeline's own model
    scans = run(
        [
            "python",
            "-m",
            "digitpipe.commands.sweep",
            *tiny_overrides(mnist_raw),
            "scans.model_uri=models:/digit-classifier@champion",
            "hydra.run.dir=champ",
        ],
        project_copy,
        env=env,
    )
    assert "predict-scans: 30 images, 0 errors" in scans.stdout
    # the alias read as the version it pointed at: DVC sees only the alias, the results say which
    assert f"(model models:/digit-classifier/{champion.version})" in scans.stdout
    scans_metrics = json.loads(
        (project_copy / "champ" / "outputs" / "scans" / "metrics.json").read_text()
    )
    assert scans_metrics["scans"]["model"] == f"models:/digit-classifier/{champion.version}"
    # its scan results went to runs of their own, and its pipeline run still finished
    champ_run_file = project_copy / "champ" / "outputs" / "train" / "mlflow_run.json"
    champ_run = json.loads(champ_run_file.read_text())
    assert client.get_run(champ_run["run_id"]).info.status == "FINISHED"

    # a real MLflow server on loopback shows the runs, their histories and the report
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=project_copy,
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                rest(port, "experiments/get-by-name?experiment_name=digitpipe")
                break
            except OSError:
                time.sleep(0.5)
        found = rest(
            port,
            "runs/search",
            {
                "experiment_ids": [experiment.experiment_id],
                "filter": f"tags.sweep_id = '{sweep_id}'",
                "max_results": 50,
            },
        )["runs"]
        assert len(found) == 5  # the parent and its four children
        child = children[0].info.run_id
        history = rest(port, f"metrics/get-history?run_id={child}&metric_key=accuracy")
        assert len(history["metrics"]) == int(children[0].data.params["train.epochs"])
        listed = rest(port, f"artifacts/list?run_id={parent.info.run_id}&path=compare")
        assert {f["path"] for f in listed["files"]} >= {"compare/report.md", "compare/runs.csv"}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])  # Ctrl-C, `kill`
def test_a_sweep_stopped_by_ctrl_c_or_kill_says_how_to_resume_and_ends_its_parent(
    project_copy, mnist_raw, tmp_path, stop
):
    """Ctrl-C or `kill`: one line (no traceback) naming the folder to resume, and the MLflow
    parent run KILLED, not left RUNNING for ever."""
    import signal

    store = f"sqlite:///{tmp_path / 'team.db'}"
    sweep_dir = project_copy / "multirun" / f"stopped-{stop}"
    command = [
        str(BIN / "python"), "-m", "digitpipe.commands.sweep", "-m", *tiny_overrides(mnist_raw),
        "model=seed_blog_cnn,seed_lab_cnn", f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
    }
    sweep = subprocess.Popen(
        command, cwd=project_copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    for line in sweep.stdout:
        if line.startswith("train: seed_blog_cnn"):  # the first job is training
            break
    sweep.send_signal(getattr(signal, stop))
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"error: interrupted; resume it with hydra.sweep.dir={sweep_dir}"
    )
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("digitpipe")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.sweep_dir != ''")
    assert parent.info.status == "KILLED"
    (job,) = client.search_runs([experiment.experiment_id], "tags.architecture = 'seed_blog_cnn'")
    assert job.info.status == "KILLED"


def test_a_sweep_whose_values_choose_no_job_fails_in_one_line(project_copy, tmp_path):
    """`model=glob(zz*)` matches no architecture: zero jobs is a failed sweep, not exit 0.
    Two sweep folders ending in the same two names get two sweep ids (one mixed both)."""
    store = f"sqlite:///{tmp_path / 'none.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    for team in ("a", "b"):
        sweep_dir = tmp_path / team / "x" / "y"
        done = subprocess.run(
            [str(BIN / "python"), "-m", "digitpipe.commands.sweep", "-m", "model=glob(zz*)",
             f"hydra.sweep.dir={sweep_dir}"],
            cwd=project_copy, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 1
        assert (
            done.stderr.strip()
            .splitlines()[-1]
            .endswith(": FAILED: no job ran (did its values choose none?), or a job did not finish")
        )
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("digitpipe")
    parents = client.search_runs([experiment.experiment_id], "tags.sweep_dir != ''")
    assert sorted(p.data.tags["sweep_id"][:3] for p in parents) == ["x_y", "x_y"]
    assert len({p.data.tags["sweep_id"] for p in parents}) == 2
    # compare reads a folder's own id from its record
    ids = {p.data.tags["sweep_dir"]: p.data.tags["sweep_id"] for p in parents}
    for team in ("a", "b"):
        sweep_dir = tmp_path / team / "x" / "y"
        done = subprocess.run(
            [str(BIN / "python"), "-m", "digitpipe.commands.compare", "--sweep", str(sweep_dir)],
            cwd=project_copy, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2
        assert done.stderr == (
            f"error: compare: sweep {ids[str(sweep_dir)]} has no evaluated runs yet\n"
        )
