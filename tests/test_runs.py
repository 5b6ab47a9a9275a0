"""How a pipeline run ends in MLflow: its status says what happened to it."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

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


def test_a_sweep_job_refused_between_stages_ends_its_run_failed(tmp_path):
    """Between stages the run is RUNNING (the next stage reopens it); a sweep job that stops
    there on a mistake never reopens it, so it ends FAILED. A finished run is left alone."""
    from digitpipe.paths import Paths
    from digitpipe.tracking import fail_unfinished, write_run_file

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store.db'}")
    client = MlflowClient()
    paths = Paths(workspace=tmp_path, root=tmp_path)
    fail_unfinished(paths)  # no run opened yet: nothing to end
    for status, after in (("RUNNING", "FAILED"), ("FINISHED", "FINISHED")):
        run = client.create_run("0")
        if status == "FINISHED":
            client.set_terminated(run.info.run_id, "FINISHED")
        write_run_file(paths, {"run_id": run.info.run_id})
        fail_unfinished(paths)
        assert client.get_run(run.info.run_id).info.status == after
