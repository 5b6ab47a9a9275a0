"""The whole pipeline in-process, once per Hydra job: sweeps over architectures and epochs.

    python -m digitpipe.commands.sweep -m model=seed_blog_cnn,seed_lab_cnn train.epochs=1,2
    python -m digitpipe.commands.sweep -m 'model=glob(*)' hydra/launcher=joblib

Runs exactly dvc.yaml's stages in dvc.yaml's order. Each job writes under its own folder of the
sweep and is a child MLflow run of the sweep's parent. Rerun a sweep with the same
`hydra.sweep.dir` and only the jobs whose runs did not finish run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from digitpipe import checks, tracking
from digitpipe.config import compose, one_line_hydra_error, prepared_data, validate
from digitpipe.errors import UserError, stop_on_kill
from digitpipe.paths import Paths
from digitpipe.stages import pipeline, stage_function

# Sweep folders must be unique even for two sweeps started in the same second.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
# On Ray, every job's own lines reach the driver: Ray's log deduplication would fold lines
# that differ only in words with digits ("job 0 (...): skipped" and "job 2 (...): skipped")
# into one. Read by ray when the launcher first imports it, after this module.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
HYDRA_CONF = Path(__file__).resolve().parents[3] / "conf"  # what @hydra.main's config_path names


def data_key(cfg: DictConfig) -> str:
    """Jobs with the same data config share one prepared copy (written atomically)."""
    text = json.dumps(prepared_data(cfg), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_pipeline(
    cfg: DictConfig, paths: Paths, tags: dict[str, str] | None = None, parent: str | None = None
) -> None:
    """Every stage of dvc.yaml in order; prepare is skipped when this data config's copy exists."""
    from digitpipe.mnist import splits  # sklearn: not on the path of a refused override

    for name, module in pipeline(paths.pipeline_file).items():
        if name == "prepare" and splits.file(paths.prepared_dir, "test").is_file():
            continue
        run = stage_function(module)
        if name == "train":
            run(cfg, paths, tags=tags, parent_run_id=parent)
        else:
            run(cfg, paths)


def finished_before(paths: Paths, overrides: str) -> bool:
    """Whether this job's pipeline run already FINISHED (a resumed sweep).
    A recorded run that did not finish, and that train will not resume from a backup, is
    marked superseded: the job starts over in a new run. A finished job of other overrides
    (the sweep relaunched with other values into its folder) is refused: its results would
    pass for these."""
    if not paths.run_file.is_file():
        return False
    run_id = tracking.read_run_file(paths)["run_id"]
    tags = tracking.finished_run(run_id)
    if tags is not None and tags.get("hydra_overrides", overrides) != overrides:
        ran, asked = set(tags["hydra_overrides"].split(",")), set(overrides.split(","))
        raise UserError(
            f"{paths.workspace}: this job ran {','.join(sorted(ran - asked))}, not "
            f"{','.join(sorted(asked - ran))}: resume a sweep with its own values, or start a "
            "new one (no hydra.sweep.dir)"
        )
    if tags is not None and paths.evaluate_metrics_file.is_file():  # what its score is read from
        return True
    if not paths.backup_run_file.is_file():
        tracking.supersede(run_id)
    return False


def check_overrides(argv: list[str], conf_dir: Path) -> None:
    """Compose and validate every value the sweep will use before Hydra starts, so that a typo
    or a bad value is one line (Hydra reports them in several). Hydra's own settings, the
    Optuna search space and glob() sweeps are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    given = [a for a in argv if ("=" in a or a.startswith("~")) and not a.startswith("-")]
    values = dict(a.split("=", 1) for a in given if "=" in a)
    if values.get("hydra.launcher.n_jobs", "").strip() in ("0", "-0"):
        raise UserError("config: hydra.launcher.n_jobs=0: must be at least 1 (-1: a job a core)")
    check_search(values, conf_dir)
    ours = [a for a in given if not a.lstrip("+~").startswith(("hydra", "hparams_search"))]
    try:
        parsed = OverridesParser.create().parse_overrides(ours)
    except HydraException as exc:
        raise UserError(f"config: {one_line_hydra_error(exc)}") from None
    settings = hydra_settings(given, conf_dir)
    multirun = settings.mode == RunMode.MULTIRUN or any(
        a == "-m" or (len(a) > 2 and "--multirun".startswith(a)) for a in argv
    )  # -m, --multirun or an abbreviation argparse takes; a search's config sets the mode
    fixed, swept = [], []
    for override in parsed:
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        if not multirun:
            raise UserError(f"config: {not_a_sweep(override.input_line, conf_dir)}")
        try:
            values = list(override.sweep_string_iterator())
        except HydraException:
            continue  # glob(), interval(): expanded by Hydra or searched by Optuna
        key = override.input_line.split("=", 1)[0]
        swept += [f"{key}={value}" for value in values]
    # each swept value once, beside every fixed override; then each scans folder (and model)
    # as predict-scans will read it, before any job trains
    composed = [compose(conf_dir, fixed + ([one] if one else [])) for one in swept or [None]]
    folders = {(c.scans.dir, c.scans.labels_file, c.scans.model_uri): c for c in composed}
    for cfg in folders.values():
        checks.scans(cfg, Paths.here())
    check_resumed_sweep(given)
    check_launcher(settings)


def not_a_sweep(override: str, conf_dir: Path) -> str:
    """Several values without -m: Hydra's four-line message as one, with the spellings that
    mean something for this key (a config group takes no list)."""
    key = override.split("=", 1)[0]
    if (conf_dir / key.lstrip("+~")).is_dir():
        return f"{override}: several values are a sweep: add -m"
    return (
        f"{override}: several values are a sweep: add -m (a list is {key}=[a,b]; a text with a "
        f"comma is quoted: {key}='a,b')"
    )


def hydra_settings(given: list[str], conf_dir: Path) -> DictConfig:
    """Hydra's own config with the sweep's hydra overrides: a launcher that does not exist, or a
    setting the chosen launcher lacks, is one line here (Hydra reports it in several)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    theirs = [a for a in given if a.lstrip("+~").startswith(("hydra", "hparams_search"))]
    try:
        parsed = OverridesParser.create().parse_overrides(theirs)
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        with initialize_config_dir(str(conf_dir.resolve()), version_base="1.3"):
            return hydra_compose("config", overrides=fixed, return_hydra_config=True).hydra
    except HydraException as exc:
        raise UserError(f"config: {one_line_hydra_error(exc, conf_dir)}") from None


def check_launcher(hydra_cfg: DictConfig) -> None:
    """Ray jobs that could never be placed wait for ever without a word: a Ray started for the
    sweep has this machine's CPUs only; a cluster named `auto` must be running here."""
    if not hydra_cfg.launcher._target_.endswith("RayLauncher"):
        return
    address = OmegaConf.select(hydra_cfg, "launcher.ray.init.address")
    if address == "auto":
        check_ray_cluster()
    elif address is None and not running_ray_cluster():  # Ray starts one for the sweep
        from ray._private.utils import get_num_cpus  # Ray's own count (cgroup limits too)

        asked = OmegaConf.select(hydra_cfg, "launcher.ray.init.num_cpus")
        cpus = get_num_cpus() if asked is None else asked
        need = OmegaConf.select(hydra_cfg, "launcher.ray.remote.num_cpus", default=None)
        if (1 if need is None else need) > cpus:  # a Ray task asks for 1 CPU unless told
            need = "1 (Ray's default)" if need is None else need
            raise UserError(
                f"config: hydra.launcher.ray.remote.num_cpus={need}: the Ray started for this "
                f"sweep has {cpus} CPUs, so no job could start (ask for at most {cpus}, or join "
                "a cluster: hydra.launcher.ray.init.address=auto)"
            )


def running_ray_cluster() -> bool:
    """Whether ray.init(address=None) would join a cluster (RAY_ADDRESS, or one started on this
    machine with `ray start`) rather than start its own."""
    from ray._private.services import get_ray_address_from_environment

    try:
        return get_ray_address_from_environment(None, None) is not None
    except ConnectionError:
        return False


def check_resumed_sweep(given: list[str]) -> None:
    """A sweep relaunched into its folder must ask for what it ran. Checked before Hydra
    starts: Hydra would rewrite the folder's multirun.yaml, and the parent run reopen, first."""
    folder = next((a.split("=", 1)[1] for a in given if a.startswith("hydra.sweep.dir=")), None)
    if folder is None or not (recorded := Path(folder) / "multirun.yaml").is_file():
        return
    ran = set(OmegaConf.load(recorded).hydra.overrides.task)
    asked = {a for a in given if not a.lstrip("+~").startswith("hydra")}
    if ran != asked:
        raise UserError(
            f"hydra.sweep.dir={folder}: this sweep ran {' '.join(sorted(ran - asked)) or '-'}, "
            f"not {' '.join(sorted(asked - ran)) or '-'}: resume a sweep with its own values, or "
            "start a new one (no hydra.sweep.dir)"
        )


def check_search(given: dict[str, str], conf_dir: Path) -> None:
    """The search's own settings, which Hydra's sweeper reads only once the parent run is open."""
    search = given.get("hparams_search")
    searches = sorted(p.stem for p in (conf_dir / "hparams_search").glob("*.yaml"))
    if search is not None and search not in searches:
        raise UserError(
            f"config: hparams_search={search}: no such search (available: {', '.join(searches)})"
        )
    trials = given.get("hydra.sweeper.n_trials")
    if trials is not None and not (trials.isdigit() and int(trials) >= 1):
        raise UserError(f"config: hydra.sweeper.n_trials={trials}: must be a whole number >= 1")


def check_ray_cluster() -> None:
    """address=auto with no Ray cluster on this machine: one line now, not Ray's traceback
    once the sweep's parent run is open."""
    from ray._private.services import get_ray_address_from_environment  # Ray's own lookup

    try:
        get_ray_address_from_environment("auto", None)
    except ConnectionError:
        raise UserError(
            "hydra.launcher.ray.init.address=auto: no Ray cluster runs on this machine "
            "(start one with `ray start --head`, or name its address: ray://head:10001)"
        ) from None


@hydra.main(config_path="../../../conf", config_name="config", version_base="1.3")
def main(raw: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    try:
        cfg = validate(raw)
        job_dir = Path(hydra_cfg.runtime.output_dir)
        paths = Paths.for_job(job_dir, data_key(cfg))
        with tracking.ending_job_run(paths):
            tags = {"hydra_overrides": hydra_cfg.job.override_dirname or "(defaults)"}
            parent = None
            if hydra_cfg.mode == RunMode.MULTIRUN:
                tracking.configure(cfg, paths)
                sweep = tracking.sweep_parent(job_dir.parent)
                if sweep is None:
                    raise UserError(
                        f"{job_dir.parent}: no MLflow parent run recorded for this sweep"
                    )
                parent = sweep["run_id"]
                tags |= {"sweep_id": sweep["sweep_id"], "hydra_job": str(hydra_cfg.job.num)}
                if finished_before(paths, tags["hydra_overrides"]):
                    overrides = tags["hydra_overrides"]
                    print(f"job {hydra_cfg.job.num} ({overrides}): skipped, finished")
                    return searched_score(paths)
            run_pipeline(cfg, paths, tags=tags, parent=parent)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    return searched_score(paths)


def searched_score(paths: Paths) -> float:
    """What a sweeper (Optuna) maximises: the validation accuracy of the model the job keeps,
    as the evaluate stage measured it on that model (never the test set's)."""
    try:
        return json.loads(paths.evaluate_metrics_file.read_text())["val"]["accuracy"]
    except (OSError, ValueError, KeyError):  # no validation split, or no evaluate stage
        return float("nan")


if __name__ == "__main__":
    stop_on_kill()
    try:
        check_overrides(sys.argv[1:], HYDRA_CONF)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    try:
        main()
    except KeyboardInterrupt:
        folder = tracking.abandon_launched_sweep("KILLED")
        hint = f"; resume it with hydra.sweep.dir={folder}" if folder else ""
        print(f"error: interrupted{hint}", file=sys.stderr)
        raise SystemExit(130) from None
    except SystemExit as exc:
        if exc.code not in (0, None):  # a job or the launcher failed: no end callback
            tracking.abandon_launched_sweep("FAILED")
        raise
