"""How a pipeline run ends in MLflow: its status says what happened to it."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from digitpipe.errors import UserError
from digitpipe.tracking.runs import _finishing


@pytest.mark.parametrize(
    ("stop", "status"), [(KeyboardInterrupt, "KILLED"), (RuntimeError, "FAILED")]
)
def test_a_run_stopped_by_ctrl_c_is_killed_and_one_that_crashed_failed(tmp_path, stop, status):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    run = mlflow.start_run()
    with pytest.raises(stop), _finishing("train", ["train"]):
        raise stop
    assert MlflowClient().get_run(run.info.run_id).info.status == status


@pytest.mark.parametrize(
    ("stop", "status"),
    [(UserError, "FAILED"), (RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")],
)
def test_a_sweep_job_stopped_between_stages_ends_its_run(tmp_path, stop, status):
    """Between stages the run is RUNNING (the next stage reopens it); a sweep job that stops
    there (a stage refused, a crash, Ctrl-C) never reopens it, so it ends FAILED, or KILLED on
    Ctrl-C. A finished run is left alone, and a job that opened no run has none to end."""
    from digitpipe.paths import Paths
    from digitpipe.tracking import ending_job_run, write_run_file

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    client = MlflowClient()
    paths = Paths(workspace=tmp_path, root=tmp_path)
    with pytest.raises(stop), ending_job_run(paths):  # no run opened yet: nothing to end
        raise stop("stopped")
    for before, after in (("RUNNING", status), ("FINISHED", "FINISHED")):
        run = client.create_run("0")
        if before == "FINISHED":
            client.set_terminated(run.info.run_id, "FINISHED")
        write_run_file(paths, {"run_id": run.info.run_id})
        with pytest.raises(stop), ending_job_run(paths):
            raise stop("stopped")
        assert client.get_run(run.info.run_id).info.status == after


def test_a_sweep_job_that_runs_to_the_end_leaves_its_run_to_the_last_stage(tmp_path):
    from digitpipe.paths import Paths
    from digitpipe.tracking import ending_job_run, write_run_file

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    client = MlflowClient()
    run = client.create_run("0")
    paths = Paths(workspace=tmp_path, root=tmp_path)
    write_run_file(paths, {"run_id": run.info.run_id})
    with ending_job_run(paths):
        pass
    assert client.get_run(run.info.run_id).info.status == "RUNNING"
