"""Sweeps in MLflow: one parent run per Hydra multirun, each job's pipeline run its child.

The parent is created (and the store set up) once, in the launching process, before jobs fan
out; its id goes to `<sweep dir>/mlflow_parent.json`. Rerunning a sweep in the same folder
reuses that parent, and a job whose run already FINISHED is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from digitpipe.config import validate
from digitpipe.errors import UserError
from digitpipe.paths import Paths
from digitpipe.tracking.registry import settle_champion, split_of
from digitpipe.tracking.runs import read_run_file
from digitpipe.tracking.store import configure, retry_when_locked

PARENT_FILE = "mlflow_parent.json"
# The sweep this process launched (set when its parent run starts): what an interrupted or
# crashed launch marks ended, since Hydra calls no end callback then.
_LAUNCHED: dict[str, Any] = {}


def sweep_id_of(sweep_dir: Path) -> str:
    return f"{sweep_dir.parent.name}_{sweep_dir.name}"


def sweep_parent(sweep_dir: Path) -> dict | None:
    try:
        return json.loads((sweep_dir / PARENT_FILE).read_text())
    except (OSError, ValueError):
        return None


def start_sweep_parent(cfg: DictConfig, paths: Paths, sweep_dir: Path) -> tuple[str, str, bool]:
    """The sweep's parent run: reopened when this folder already has one, else created.
    Returns (sweep id, run id, resumed)."""
    experiment_id = configure(cfg, paths)
    client = MlflowClient()
    if record := sweep_parent(sweep_dir):
        retry_when_locked(client.update_run)(record["run_id"], status="RUNNING")
        return record["sweep_id"], record["run_id"], True
    sweep_id = sweep_id_of(sweep_dir)
    parents = retry_when_locked(client.search_runs)(
        [experiment_id], f"tags.sweep_id = '{sweep_id}' and tags.sweep_dir != ''"
    )
    if any(p.data.tags["sweep_dir"] != str(sweep_dir) for p in parents):  # another .../x/y
        sweep_id += "-" + hashlib.sha1(str(sweep_dir).encode()).hexdigest()[:6]
    parent = retry_when_locked(client.create_run)(
        experiment_id,
        run_name=f"sweep-{sweep_id}",
        tags={"sweep_id": sweep_id, "sweep_dir": str(sweep_dir)},
    )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / PARENT_FILE).write_text(
        json.dumps({"run_id": parent.info.run_id, "sweep_id": sweep_id}) + "\n"
    )
    return sweep_id, parent.info.run_id, False


def end_sweep_parent(cfg: DictConfig, paths: Paths, sweep_dir: Path) -> str | None:
    """FINISHED when every child finished, else FAILED; logs the sweep's multirun.yaml."""
    record = sweep_parent(sweep_dir)
    if record is None:
        return None
    configure(cfg, paths)
    client = MlflowClient()
    if (sweep_dir / "multirun.yaml").is_file():
        retry_when_locked(client.log_artifact)(
            record["run_id"], str(sweep_dir / "multirun.yaml"), "sweep"
        )
    children = find_runs(cfg.mlflow.experiment_name, sweep_id=record["sweep_id"])
    failed = [r for r in children if r.info.status != "FINISHED"]
    status = "FAILED" if failed or not children else "FINISHED"
    retry_when_locked(client.set_tag)(record["run_id"], "jobs", str(len(children)))
    if children and cfg.mlflow.log_model and cfg.mlflow.registered_model:
        settle_champion(cfg.mlflow.registered_model, split_of(cfg))  # jobs elsewhere raced
    retry_when_locked(client.set_terminated)(record["run_id"], status)
    return status


def abandon_launched_sweep(status: str) -> Path | None:
    """End the parent run of the sweep this process launched as `status` (KILLED when
    interrupted, FAILED when the launch crashed); returns its folder, None if none started."""
    if not _LAUNCHED or (record := sweep_parent(_LAUNCHED["sweep_dir"])) is None:
        return None
    configure(_LAUNCHED["cfg"], Paths.here())
    retry_when_locked(MlflowClient().set_terminated)(record["run_id"], status)
    return _LAUNCHED["sweep_dir"]


def supersede(run_id: str) -> None:
    """An interrupted job's run that a rerun replaces: KILLED, tagged, left out of the sweep."""
    client = MlflowClient()
    retry_when_locked(client.set_tag)(run_id, "superseded", "true")
    retry_when_locked(client.set_terminated)(run_id, "KILLED")


def supersede_unfinished(run_id: str) -> None:
    """Supersede a run that will never finish, if it is in this store and not FINISHED."""
    try:
        status = MlflowClient().get_run(run_id).info.status
    except mlflow.exceptions.MlflowException:
        return  # another store's run
    if status != "FINISHED":
        supersede(run_id)


def end_unfinished(paths: Paths, status: str) -> None:
    """End the job's pipeline run with this status if one was opened and did not finish."""
    if not paths.run_file.is_file():
        return
    record = read_run_file(paths)
    run_id = record["run_id"]
    client = MlflowClient(record.get("tracking_uri"))  # the store the run is in
    try:
        run_status = retry_when_locked(client.get_run)(run_id).info.status
    except mlflow.exceptions.MlflowException:
        return  # another store's run
    if run_status == "RUNNING":
        retry_when_locked(client.set_terminated)(run_id, status)


@contextlib.contextmanager
def ending_job_run(paths: Paths) -> Iterator[None]:
    """Between two stages a job's run is RUNNING (the next stage reopens it). A sweep job that
    stops there (a stage refused, a crash, Ctrl-C) never reopens it, so it ends FAILED (KILLED
    on Ctrl-C) rather than RUNNING for ever; a resumed sweep runs the job again."""
    try:
        yield
    except KeyboardInterrupt:
        end_unfinished(paths, "KILLED")
        raise
    except BaseException:
        end_unfinished(paths, "FAILED")
        raise


def finished_run(run_id: str) -> dict[str, str] | None:
    """The tags of a recorded pipeline run that has FINISHED (all its stages done), else None."""
    try:
        run = MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return None
    return dict(run.data.tags) if run.info.status == "FINISHED" else None


def find_runs(experiment_name: str, sweep_id: str | None = None) -> list:
    """The pipeline runs of an experiment (parents excluded), optionally of one sweep."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise UserError(f"mlflow: no experiment named {experiment_name!r}")
    query = "tags.architecture != ''"
    if sweep_id:
        query += f" and tags.sweep_id = '{sweep_id}'"
    runs = mlflow.search_runs([experiment.experiment_id], filter_string=query, output_format="list")
    return [r for r in runs if r.data.tags.get("superseded") != "true"]


def resolve_sweep(given: str) -> str:
    """A sweep's id from what a user typed: its id, or its folder (whose record holds the id,
    which may carry a suffix when another folder ends in the same two names)."""
    folder = Path(given)
    if not folder.is_dir():
        return given
    if record := sweep_parent(folder.resolve()):
        return record["sweep_id"]
    raise UserError(f"--sweep {given}: this folder holds no sweep ({PARENT_FILE} is not in it)")


def sweep_parent_run(experiment_name: str, sweep_id: str) -> str:
    """The run id of a sweep's parent; a user error naming the recent sweeps when none."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise UserError(f"mlflow: no experiment named {experiment_name!r}")
    query = f"tags.sweep_id = '{sweep_id}' and tags.sweep_dir != ''"
    if found := client.search_runs([experiment.experiment_id], query, max_results=1):
        return found[0].info.run_id
    parents = client.search_runs(
        [experiment.experiment_id],
        "tags.sweep_dir != ''",
        order_by=["attributes.start_time DESC"],
        max_results=3,
    )
    recent = ", ".join(p.data.tags.get("sweep_id", "?") for p in parents)
    known = f"the latest: {recent}" if recent else "it has none"
    raise UserError(f"--sweep {sweep_id}: no such sweep in {experiment_name!r} ({known})")


def log_to_sweep_parent(run_id: str, files: list[Path], folder: str) -> None:
    """Attach files (e.g. the comparison report) to a sweep's parent run."""
    client = MlflowClient()
    for file in files:
        client.log_artifact(run_id, str(file), folder)


def _pipeline_config(config: DictConfig) -> DictConfig:
    return validate({k: v for k, v in config.items() if k != "hydra"})


FAILED_WHY = "no job ran (did its values choose none?), or a job did not finish"


class MlflowSweepCallback(Callback):
    """Hydra callback: the parent run before the jobs fan out, its status after they end.

    Hydra turns a callback's exception into a warning; a failure here must stop the sweep
    instead (SystemExit), or jobs would run without their parent."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        try:
            sweep_id, parent, resumed = start_sweep_parent(
                _pipeline_config(config), Paths.here(), sweep_dir
            )
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        _LAUNCHED.update(cfg=_pipeline_config(config), sweep_dir=sweep_dir)
        again = " (resumed: finished jobs are skipped)" if resumed else ""
        print(f"sweep {sweep_id}: MLflow parent run {parent}{again}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        status = end_sweep_parent(_pipeline_config(config), Paths.here(), sweep_dir)
        _LAUNCHED.clear()  # ended here: nothing left for abandon_launched_sweep to mark
        sweep_id = (sweep_parent(sweep_dir) or {}).get("sweep_id", sweep_id_of(sweep_dir))
        if status == "FAILED":  # no job at all (the values chose none), or one did not finish
            print(f"error: sweep {sweep_id}: FAILED: {FAILED_WHY}", file=sys.stderr)
            raise SystemExit(1)
        print(f"sweep {sweep_id}: {status}; its runs side by side: "
              f"python -m digitpipe.commands.compare --sweep {sweep_id}")  # fmt: skip
