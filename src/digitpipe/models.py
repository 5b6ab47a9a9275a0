"""Build a Keras model from a declarative layer list (conf/model/*.yaml)."""

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
    kind = options.pop("type")
    layer_class = getattr(keras.layers, kind, None)
    if layer_class is None:
        raise UserError(f"config: model.layers[{index}].type={kind!r}: no such keras layer")
    try:
        return layer_class(**options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"config: model.layers[{index}] ({kind}): {exc}") from None


def build(model_cfg: DictConfig) -> keras.Model:
    """A Sequential model for 28x28x1 inputs; the last layer must output 10 class scores."""
    specs = OmegaConf.to_container(model_cfg.layers, resolve=True)
    if keras.mixed_precision.dtype_policy().name != "float32":
        specs[-1] = {**specs[-1], "dtype": "float32"}  # softmax in float32 under bf16 compute
    model = keras.Sequential(
        [keras.Input(shape=INPUT_SHAPE)] + [make_layer(s, i) for i, s in enumerate(specs)],
        name=model_cfg.name,
    )
    if model.output_shape != (None, NUM_CLASSES):
        raise UserError(
            f"config: model {model_cfg.name} outputs shape {model.output_shape}, "
            f"needs (None, {NUM_CLASSES}): end with a Flatten/pooling and Dense(10, softmax)"
        )
    return model


def make_optimizer(train_cfg: DictConfig, learning_rate=None) -> keras.optimizers.Optimizer:
    """The configured optimizer; `learning_rate` may be a schedule (default: the config's float)."""
    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    lr = train_cfg.learning_rate if learning_rate is None else learning_rate
    return optimizers[train_cfg.optimizer](learning_rate=lr)


def load(path) -> keras.Model:
    """A saved .keras model, or a clear error when the file is missing or unreadable."""
    if not Path(path).is_file():
        raise UserError(f"{path}: model file not found (run the train stage first)")
    try:
        return keras.models.load_model(path)
    except Exception as exc:
        raise UserError(f"{path}: not a readable Keras model ({type(exc).__name__})") from None
