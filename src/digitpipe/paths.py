"""The one place that decides where files live.

Two roots matter. The *workspace* is where a run writes its outputs (the DVC repo, a DVC queue's
temporary copy, or a Hydra multirun job folder). The *project root* is the real clone: caches
(raw MNIST) and the MLflow store live there, so a run in DVC's throwaway copy under
`.dvc/tmp/exps/` still lands in the user's store instead of vanishing with the copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"
CONF_DIR = "conf"


def find_workspace(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding dvc.yaml, else cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return here


def project_root(workspace: Path) -> Path:
    """The real clone: DIGITPIPE_ROOT if set, else the workspace outside any DVC temp copy."""
    if env := os.environ.get("DIGITPIPE_ROOT"):
        return Path(env).resolve()
    parts = workspace.resolve().parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return workspace.resolve()


@dataclass(frozen=True)
class Paths:
    """Every file the pipeline reads or writes, derived from two roots."""

    workspace: Path
    root: Path
    prepared_dir_override: Path | None = None
    inputs_base: Path | None = None  # where relative paths in config resolve (default: workspace)

    @classmethod
    def here(cls) -> Paths:
        workspace = find_workspace()
        return cls(workspace=workspace, root=project_root(workspace))

    @classmethod
    def for_job(cls, job_dir: Path, data_key: str) -> Paths:
        """A Hydra job: outputs in its own folder, prepared data shared per data config."""
        launch = find_workspace()
        root = project_root(launch)
        return cls(
            workspace=job_dir,
            root=root,
            inputs_base=launch,
            prepared_dir_override=root / "data" / "cache" / f"prepared-{data_key}",
        )

    # --- config -----------------------------------------------------------------------------
    @property
    def params_file(self) -> Path:
        return self.workspace / PARAMS_FILE

    @property
    def conf_dir(self) -> Path:
        return self.root / CONF_DIR

    @property
    def pipeline_file(self) -> Path:
        """dvc.yaml: the one definition of the stages and their order (the launch folder's, else
        the clone's: a scratch workspace of the benchmarks has none of its own)."""
        here = (self.inputs_base or self.workspace) / "dvc.yaml"
        return here if here.is_file() else self.root / "dvc.yaml"

    # --- data -------------------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        """Downloaded MNIST IDX files, shared by every run of this clone."""
        return self.root / "data" / "raw"

    @property
    def prepared_dir(self) -> Path:
        return self.prepared_dir_override or self.workspace / "data" / "prepared"

    def resolve_user_path(self, value: str) -> Path:
        """A path from config: absolute as given, relative from where the run was launched."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.inputs_base or self.workspace) / path

    def resolve_output_path(self, value: str) -> Path:
        """A path from config that a stage writes: relative from the workspace, so concurrent
        sweep jobs never write the same files."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.workspace / path

    # --- stage outputs ----------------------------------------------------------------------
    @property
    def train_dir(self) -> Path:
        return self.workspace / "outputs" / "train"

    @property
    def model_file(self) -> Path:
        return self.train_dir / "model.keras"

    @property
    def history_file(self) -> Path:
        return self.train_dir / "history.csv"

    @property
    def summary_file(self) -> Path:
        """The finished training's figures (time, final and best validation accuracy)."""
        return self.train_dir / "summary.json"

    @property
    def backup_dir(self) -> Path:
        """Keras BackupAndRestore state of an unfinished training (removed when it finishes)."""
        return self.train_dir / "backup"

    @property
    def backup_run_file(self) -> Path:
        """The MLflow run an unfinished training logs to: a rerun resumes into it."""
        return self.backup_dir / "run.json"

    @property
    def run_file(self) -> Path:
        """Holds the MLflow run id that train opened, for the later stages."""
        return self.train_dir / "mlflow_run.json"

    @property
    def evaluate_dir(self) -> Path:
        return self.workspace / "outputs" / "evaluate"

    @property
    def evaluate_metrics_file(self) -> Path:
        """Test scores and the kept model's validation accuracy (what a search maximises)."""
        return self.evaluate_dir / "metrics.json"

    @property
    def scans_out_dir(self) -> Path:
        return self.workspace / "outputs" / "scans"

    @property
    def scan_benchmark_out_dir(self) -> Path:
        return self.workspace / "outputs" / "scan-benchmark"

    @property
    def ensemble_dir(self) -> Path:
        return self.workspace / "outputs" / "ensemble"

    @property
    def compare_dir(self) -> Path:
        return self.root / "reports" / "compare"

    # --- tracking ---------------------------------------------------------------------------
    @property
    def mlruns_dir(self) -> Path:
        return self.root / "mlruns"

    @property
    def locks_dir(self) -> Path:
        """File locks shared by every process of this clone (store set-up, registry, jobs)."""
        return self.mlruns_dir / ".locks"

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlruns_dir / 'mlflow.db'}"
