"""Build a Keras model from a declarative layer list (conf/model/*.yaml), and its training
pieces (optimizer, loss) from their Keras names: Keras's own registries are the option lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
from omegaconf import DictConfig, OmegaConf

from digitpipe.errors import UserError

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def make_layer(spec: dict[str, Any], index: int) -> keras.layers.Layer:
    """One keras.layers object from {'type': 'Conv2D', 'filters': 32, ...}."""
    options = dict(spec)
    kind = options.pop("type", None)
    layer_class = getattr(keras.layers, str(kind), None)
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise UserError(f"config: model.layers[{index}].type={kind!r}: no such keras layer")
    try:
        return layer_class(**options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"config: model.layers[{index}] ({kind}): {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def build(model_cfg: DictConfig) -> keras.Model:
    """A Sequential model for 28x28x1 inputs; the last layer must output 10 class scores."""
    specs = OmegaConf.to_container(model_cfg.layers, resolve=True)
    if keras.mixed_precision.dtype_policy().name != "float32":
        # Under bf16/fp16 the dense head and the output stay float32: bf16 there cost the default
        # recipe 0.2 points of validation accuracy (seeds 42, 1-4, AVX-512 BF16 CPU); the
        # convolutions, most of the arithmetic, keep the reduced precision's speed.
        specs = [{**s, "dtype": "float32"} if s.get("type") == "Dense" else s for s in specs]
        specs[-1] = {**specs[-1], "dtype": "float32"}
    layers = [make_layer(s, i) for i, s in enumerate(specs)]
    tensor = keras.Input(shape=INPUT_SHAPE)
    for index, layer in enumerate(layers):
        try:
            tensor = layer(tensor)
        except (ValueError, TypeError) as exc:  # e.g. a kernel larger than its input
            raise UserError(
                f"config: model.layers[{index}] ({specs[index]['type']}) does not fit its input "
                f"{tuple(tensor.shape)}: {_first_line(exc)}"
            ) from None
    model = keras.Sequential([keras.Input(shape=INPUT_SHAPE), *layers], name=model_cfg.name)
    if model.output_shape != (None, NUM_CLASSES):
        raise UserError(
            f"config: model {model_cfg.name} outputs shape {model.output_shape}, "
            f"needs (None, {NUM_CLASSES}): end with a Flatten/pooling and Dense(10, softmax)"
        )
    return model


def make_optimizer(
    name: str,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    options: dict[str, dict[str, Any]] | None = None,
) -> keras.optimizers.Optimizer:
    """The Keras optimizer called `name` (adam, adamw, sgd, rmsprop, nadam, ...) with its own
    keyword options from `options[name]` (keyed by optimizer, so a preset's Adam betas do not
    break `train.optimizer=sgd`); `learning_rate` may be a schedule."""
    try:
        optimizer_class = type(keras.optimizers.get(name))
    except ValueError:
        raise UserError(f"config: train.optimizer={name!r}: not a Keras optimizer") from None
    own = (options or {}).get(name, {})
    try:
        return optimizer_class(learning_rate=learning_rate, **own)
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"config: train.optimizer_options.{name}={own}: not accepted by {name}: "
            f"{_first_line(exc)}"
        ) from None


def make_loss(name: str, label_smoothing: float) -> keras.losses.Loss:
    """The Keras loss called `name`, with label smoothing where the loss takes it."""
    try:
        loss = keras.losses.get(name)
    except ValueError:
        loss = None
    if loss is None:
        raise UserError(f"config: train.loss={name!r}: not a Keras loss")
    if name.startswith("sparse_") or name.startswith("Sparse"):
        raise UserError(
            f"config: train.loss={name!r}: the targets are one-hot over the 10 digits; use "
            f"{name.removeprefix('sparse_').removeprefix('Sparse')!r}"
        )
    if name in ("categorical_crossentropy", "CategoricalCrossentropy"):
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    if label_smoothing:  # it would be silently ignored
        raise UserError(
            f"config: train.label_smoothing={label_smoothing}: only with "
            f"train.loss=categorical_crossentropy, not {name!r}"
        )
    return loss


def write_summary(model: keras.Model, path: Path) -> Path:
    """model.summary() as text: layers, output shapes, parameter counts."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=90)
    path.write_text("\n".join(lines) + "\n")
    return path


def load(path: str | Path) -> keras.Model:
    """A saved .keras model, or a clear error when the file is missing or unreadable."""
    if not Path(path).is_file():
        raise UserError(f"{path}: model file not found (run the train stage first)")
    try:
        return keras.models.load_model(path)
    except Exception as exc:
        raise UserError(f"{path}: not a readable Keras model: {_first_line(exc)}") from None
