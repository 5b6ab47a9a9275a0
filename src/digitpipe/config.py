"""Config schema and loading: params.yaml (DVC stages) or Hydra compose (tests, multirun).

The schema holds types and value checks, never values: every default is written once, in conf/.
Both paths end in `validate`, which merges the config into a structured schema so that an unknown
key, a wrong type or a bad value fails as one line naming the key.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from digitpipe.errors import UserError

LR_SCHEDULES = ("constant", "cosine")
INPUT_PIPELINES = ("numpy", "tfdata")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


@dataclass(kw_only=True)
class DataConfig:
    source_dir: str | None = MISSING
    url: str | None = MISSING
    npm_package: str | None = MISSING
    download_timeout_s: float = MISSING
    val_size: int = MISSING
    split_seed: int = MISSING
    train_limit: int | None = MISSING
    test_limit: int | None = MISSING


@dataclass(kw_only=True)
class ModelConfig:
    name: str = MISSING
    dropout: float | None = None  # absent unless a model defines this knob for its layers
    layers: list[dict[str, Any]] = MISSING


@dataclass(kw_only=True)
class AugmentConfig:
    enabled: bool = MISSING
    rotation_deg: float = MISSING
    shift: float = MISSING
    zoom: float = MISSING
    thickness: float = MISSING
    elastic: float = MISSING
    blur: float = MISSING
    noise: float = MISSING
    flagged_ones: float = MISSING


@dataclass(kw_only=True)
class TrainConfig:
    optimizer: str = MISSING
    learning_rate: float = MISSING
    lr_schedule: str = MISSING
    warmup_epochs: float = MISSING
    warmup_start: float = MISSING
    optimizer_options: dict[str, dict[str, Any]] = MISSING
    batch_size: int = MISSING
    epochs: int = MISSING
    seed: int = MISSING
    loss: str = MISSING
    label_smoothing: float = MISSING
    early_stopping_patience: int | None = MISSING
    restore_best: bool = MISSING
    resume: bool = MISSING
    mixed_precision: str = MISSING
    jit_compile: bool = MISSING
    input_pipeline: str = MISSING
    augment: AugmentConfig = MISSING
    coarse_digits: float = MISSING
    verbose: int = MISSING


@dataclass(kw_only=True)
class ScanBenchConfig:
    dir: str = MISSING
    per_case: int = MISSING
    seed: int = MISSING


@dataclass(kw_only=True)
class ScansConfig:
    dir: str = MISSING
    labels_file: str | None = MISSING
    model_uri: str | None = MISSING
    gallery_max: int = MISSING
    min_confidence: float = MISSING
    split_digits: bool = MISSING
    benchmark: ScanBenchConfig = MISSING


@dataclass(kw_only=True)
class MlflowConfig:
    tracking_uri: str | None = MISSING
    experiment_name: str = MISSING
    run_name: str | None = MISSING
    log_model: bool = MISSING
    registered_model: str | None = MISSING


@dataclass(kw_only=True)
class PipelineConfig:
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    train: TrainConfig = MISSING
    scans: ScansConfig = MISSING
    mlflow: MlflowConfig = MISSING


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise UserError(f"config: {key}={value!r} is invalid: {rule}")


def _one_of(options: tuple[str, ...]) -> str:
    return "must be one of " + ", ".join(options)


def _check_values(cfg: DictConfig) -> None:
    """Value rules the type system cannot express."""
    d, t, s = cfg.data, cfg.train, cfg.scans
    _check(t.epochs >= 1, "train.epochs", t.epochs, "must be >= 1")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "must be >= 1")
    _check(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "must be > 0")
    _check(t.verbose in (0, 1, 2), "train.verbose", t.verbose, "0, 1 or 2")
    _check(t.lr_schedule in LR_SCHEDULES, "train.lr_schedule", t.lr_schedule, _one_of(LR_SCHEDULES))
    _check(
        0 <= t.warmup_epochs < t.epochs,
        "train.warmup_epochs",
        t.warmup_epochs,
        "0 <= warmup_epochs < epochs",
    )
    _check(
        t.warmup_epochs == 0 or t.lr_schedule == "cosine",
        "train.warmup_epochs",
        t.warmup_epochs,
        "a warmup needs train.lr_schedule=cosine (a constant learning rate has none)",
    )
    _check(0 < t.warmup_start <= 1, "train.warmup_start", t.warmup_start, "in (0, 1]")
    _check(0 <= t.label_smoothing < 1, "train.label_smoothing", t.label_smoothing, "in [0, 1)")
    patience = t.early_stopping_patience
    _check(
        patience is None or patience >= 1,
        "train.early_stopping_patience",
        patience,
        "null (off) or >= 1",
    )
    _check(
        t.input_pipeline in INPUT_PIPELINES,
        "train.input_pipeline",
        t.input_pipeline,
        _one_of(INPUT_PIPELINES),
    )
    _check(0 <= t.coarse_digits <= 1, "train.coarse_digits", t.coarse_digits, "a share in [0, 1]")
    a = t.augment
    for key in ("thickness", "elastic", "blur", "flagged_ones"):
        _check(0 <= a[key] <= 1, f"train.augment.{key}", a[key], "a probability in [0, 1]")
    _check(
        a.enabled or not a.flagged_ones, "train.augment.flagged_ones", a.flagged_ones,
        "must be 0 while train.augment.enabled is false (the augmentation draws the flag)",
    )  # fmt: skip
    for key in ("shift", "zoom", "noise"):
        _check(0 <= a[key] < 1, f"train.augment.{key}", a[key], "in [0, 1)")
    _check(0 <= a.rotation_deg <= 180, "train.augment.rotation_deg", a.rotation_deg, "0..180")
    needs_val = patience is not None or t.restore_best
    _check(
        d.val_size > 0 or not needs_val,
        "data.val_size",
        d.val_size,
        "early stopping / restore_best need a validation split (> 0)",
    )
    _check(d.val_size >= 0, "data.val_size", d.val_size, "must be >= 0")
    _check(d.download_timeout_s > 0, "data.download_timeout_s", d.download_timeout_s, "> 0")
    for key in ("train_limit", "test_limit"):
        value = d[key]
        _check(value is None or value >= 100, f"data.{key}", value, "null or >= 100")
    if d.train_limit is not None:
        _check(
            d.val_size < d.train_limit,
            "data.val_size",
            d.val_size,
            f"must be smaller than data.train_limit={d.train_limit} (validation comes out of it)",
        )
    _check(s.gallery_max >= 1, "scans.gallery_max", s.gallery_max, "must be >= 1")
    _check(0 <= s.min_confidence <= 1, "scans.min_confidence", s.min_confidence, "in [0, 1]")
    _check(s.benchmark.per_case >= 1, "scans.benchmark.per_case", s.benchmark.per_case, ">= 1")
    _check(bool(cfg.model.name), "model.name", cfg.model.name, "must be set")
    _check(len(cfg.model.layers) > 0, "model.layers", "[]", "needs at least one layer")
    for i, layer in enumerate(cfg.model.layers):
        _check("type" in layer, f"model.layers[{i}]", dict(layer), "needs a 'type' (a Keras layer)")
    _check(
        t.mixed_precision in PRECISIONS,
        "train.mixed_precision",
        t.mixed_precision,
        _one_of(PRECISIONS),
    )


def validate(raw: DictConfig | dict, source: str = "config") -> DictConfig:
    """Merge `raw` into the schema (unknown keys and wrong types fail), then check values."""
    schema = OmegaConf.structured(PipelineConfig)
    try:
        cfg = OmegaConf.merge(schema, raw)
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        message = str(exc).splitlines()[0]
        raise UserError(f"{source}: bad key {key}: {message}") from None
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"{source}: missing key {missing[0]}{more}")
    _check_values(cfg)
    return cfg


def load_params(path: Path) -> DictConfig:
    """Read the composed config that DVC stages use."""
    if not path.is_file():
        raise UserError(f"{path}: not found (run `make params` to compose it from conf/)")
    try:
        raw = OmegaConf.load(path)
    except Exception as exc:  # yaml errors come in many types
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: not valid YAML{where}: {problem}") from None
    return validate(raw, source=path.name)


def compose(conf_dir: Path, overrides: list[str] | None = None) -> DictConfig:
    """Compose conf/ with Hydra overrides, as DVC and the tests do; errors become one line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(str(conf_dir.resolve()), version_base="1.3"):
            raw = hydra_compose(config_name="config", overrides=overrides or [])
    except HydraException as exc:
        raise UserError(f"config: {one_line_hydra_error(exc, conf_dir)}") from None
    return validate(raw)


def known_keys(conf_dir: Path) -> list[str]:
    """Every dotted key of the default config (list items left out): what a typo is matched to."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(conf_dir.resolve()), version_base="1.3"):
        raw = hydra_compose(config_name="config")
    keys = [key for key in flatten(raw) if not any(part.isdigit() for part in key.split("."))]
    return keys + [key.rsplit(".", 1)[0] for key in keys if "." in key]


# The data keys that decide which images a model trains and is validated on; with test_limit,
# all that decides the prepared data (MNIST's files are verified, whatever their source).
SPLIT_KEYS = ("data.val_size", "data.split_seed", "data.train_limit")
PREPARED_KEYS = (*SPLIT_KEYS, "data.test_limit")


def prepared_data(cfg: DictConfig) -> dict[str, Any]:
    """The settings the prepared data depends on: what a backup or a shared copy is keyed by."""
    return {key: OmegaConf.select(cfg, key) for key in PREPARED_KEYS}


# Hydra settings that only one plugin has: what to choose before setting them.
CHOOSE_FIRST = (
    ("launcher.ray", "hydra/launcher=ray_jobs"),
    ("launcher.n_jobs", "hydra/launcher=joblib"),
    ("launcher", "hydra/launcher=joblib or hydra/launcher=ray_jobs"),
    ("sweeper", "hparams_search=digitnet_optuna"),
)

REPLACED_KEYS = {  # keys taken out, and what took their place
    "train.augment.low_resolution": "train.coarse_digits took its place (coarse copies of digits, "
    "as a form scanner's 8x8 grid holds them)",
}


def one_line_hydra_error(exc: Exception, conf_dir: Path | None = None) -> str:
    """Hydra's multi-line messages ('Could not find X / Available options ...') as one line; an
    unknown key is named as such, with the closest known key when `conf_dir` is given."""
    unknown = re.match(r"Could not override '([^']+)'", str(exc))
    lacking = re.match(r"Key '[^']+' not in '(\w+)'", str(exc.__cause__))
    if unknown and lacking:  # a setting of Hydra's that the chosen plugin does not have
        key, plugin = unknown.group(1), lacking.group(1).removesuffix("Conf")
        hint = next((f" (choose one with it first: {v})" for k, v in CHOOSE_FIRST if k in key), "")
        return f"unknown key {key}: {plugin} has no such setting{hint}"
    if unknown and "is not in struct" in f"{exc} {exc.__cause__}":
        key = unknown.group(1)
        if key.lstrip("+~") in REPLACED_KEYS:
            return f"{key} is gone: {REPLACED_KEYS[key.lstrip('+~')]}"
        close = difflib.get_close_matches(key, known_keys(conf_dir), n=1) if conf_dir else []
        return f"unknown key {key}" + (f" (did you mean {close[0]}?)" if close else "")
    undeletable = re.match(r"Could not delete from config\. '([^']+)' does not exist", str(exc))
    if undeletable and conf_dir:  # Hydra cannot delete a null value: it reads as no value
        key = undeletable.group(1)
        if key in known_keys(conf_dir):
            return f"~{key}: nothing to delete, {key} is null (unset) already"
        close = difflib.get_close_matches(key, known_keys(conf_dir), n=1)
        return f"unknown key {key}" + (f" (did you mean {close[0]}?)" if close else "")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = lines[: next((i for i, x in enumerate(lines) if x.startswith("Config search")), None)]
    at = next((i for i, line in enumerate(lines) if line.startswith("Available options")), None)
    if at is None:
        return " ".join(lines)
    head = re.sub(r"^In '[\w/]+': ", "", " ".join(lines[:at]))
    return f"{head} (available: {', '.join(lines[at + 1 :])})"


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys for MLflow params: {'train.epochs': 5, 'model.layers.0.type': 'Conv2D', ...}."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, Any] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{key}.{i}")
        else:
            flat[key] = node

    walk(container, prefix)
    return flat


def run_name(cfg: DictConfig) -> str:
    """A readable MLflow run name: configured, or '<model>-e<epochs>'."""
    return cfg.mlflow.run_name or f"{cfg.model.name}-e{cfg.train.epochs}"
