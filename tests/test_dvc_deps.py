"""DVC sees every change: each stage depends on every project module it imports."""

import pytest
import yaml

from digitpipe.stages import COMMAND_PREFIX, pipeline
from tests.helpers.imports import files
from tests.helpers.project import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_depends_on_every_module_it_imports(stage):
    module = STAGES[stage]["cmd"].removeprefix(COMMAND_PREFIX)
    imported = files(f"digitpipe.stages.{module}")
    missing = sorted(f for f in imported if not covered(f, STAGES[stage]["deps"]))
    assert not missing, f"dvc.yaml stage {stage} misses deps: {missing}"


def test_dvc_yaml_is_the_one_list_of_stages_and_each_command_is_its_module():
    order = pipeline(REPO / "dvc.yaml")
    assert list(order) == ["prepare", "train", "evaluate", "predict-scans", "scan-benchmark"]
    for name, module in order.items():
        assert (REPO / "src" / "digitpipe" / "stages" / f"{module}.py").is_file(), name


def test_prepare_and_train_depend_on_the_data_settings_that_decide_the_prepared_data():
    """Not on where MNIST came from (verified by SHA-256): a new source retrains nothing."""
    from digitpipe.config import PREPARED_KEYS

    for stage in ("prepare", "train"):
        data = [key for key in STAGES[stage]["params"] if key.startswith("data")]
        assert data == list(PREPARED_KEYS), stage
