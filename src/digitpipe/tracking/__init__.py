"""The one place that talks to MLflow: store, pipeline runs, models, registry, sweeps."""

from digitpipe.tracking.models import (
    check_model_uri,
    load_keras_model,
    log_keras_model,
    pinned_model_uri,
)
from digitpipe.tracking.registry import (
    SPLIT_KEYS,
    TrainedModel,
    best_versions,
    register_and_promote,
    trained_models,
)
from digitpipe.tracking.runs import (
    epoch_callback,
    log_datasets,
    log_files,
    log_metrics,
    pipeline_params,
    read_run_file,
    set_tags,
    side_run,
    stage_run,
    start_pipeline_run,
    write_run_file,
)
from digitpipe.tracking.store import configure, tracking_uri
from digitpipe.tracking.sweeps import (
    abandon_launched_sweep,
    find_runs,
    finished_run,
    log_to_sweep_parent,
    resolve_sweep,
    supersede,
    supersede_unfinished,
    sweep_parent,
    sweep_parent_run,
)

__all__ = [
    "SPLIT_KEYS",
    "TrainedModel",
    "best_versions",
    "check_model_uri",
    "configure",
    "epoch_callback",
    "find_runs",
    "finished_run",
    "load_keras_model",
    "pinned_model_uri",
    "log_datasets",
    "log_files",
    "log_keras_model",
    "log_metrics",
    "abandon_launched_sweep",
    "log_to_sweep_parent",
    "resolve_sweep",
    "pipeline_params",
    "read_run_file",
    "register_and_promote",
    "set_tags",
    "side_run",
    "stage_run",
    "supersede",
    "supersede_unfinished",
    "start_pipeline_run",
    "sweep_parent",
    "sweep_parent_run",
    "tracking_uri",
    "trained_models",
    "write_run_file",
]
