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
