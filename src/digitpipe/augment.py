"""Scan-like augmentation of MNIST batches: the ways real scans differ from MNIST digits.

Stroke thickness (marker vs pencil), elastic distortion (handwriting wobble), small rotations,
shifts and zoom (imperfect crops), blur and noise (camera and scanner); off by default, the
continental 1's flag. Applied per batch inside the tf.data pipeline, only while training. Coarse
copies (form scanners' 8x8 grids) are made in numpy by digitpipe.coarse, read back by the reader.

Keras's preprocessing layers do rotation, shift, zoom and blur. Two transforms stay here:
Keras has no stroke-thickness layer, and `keras.layers.RandomElasticTransform` (Keras 3.15) is
not usable for this: inside tf.data (batch size unknown when traced) it replaced 37 of 64
chosen digits with the first digit of the batch while keeping their labels, its x and y
displacements are one and the same noise (correlation 1.000: every pixel moves diagonally), and
its `scale` cap gives at most 2.8 px of rough jitter on a 28-px digit. tests/test_augment.py
checks the first defect: a Keras that fixes it fails that test, which says to look again.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

SIZE = 28


def _chance(batch: tf.Tensor, probability: float) -> tf.Tensor:
    return tf.random.uniform([batch, 1, 1, 1]) < probability


def thickness(x: tf.Tensor, probability: float) -> tf.Tensor:
    """Half of the chosen digits get a thicker stroke, half a thinner one."""
    thicker = tf.nn.max_pool2d(x, 3, 1, "SAME")
    thinner = -tf.nn.max_pool2d(-x, 2, 1, "SAME")
    pick = tf.random.uniform([tf.shape(x)[0], 1, 1, 1])
    return tf.where(pick < probability / 2, thicker, tf.where(pick < probability, thinner, x))


def _sample(x: tf.Tensor, ys: tf.Tensor, xs: tf.Tensor) -> tf.Tensor:
    """Bilinear lookup of x (B, 28, 28) at fractional (ys, xs); zero outside."""
    batch = tf.shape(x)[0]
    y0, x0 = tf.floor(ys), tf.floor(xs)
    wy, wx = ys - y0, xs - x0
    index = tf.broadcast_to(tf.range(batch)[:, None, None], tf.shape(ys))

    def at(yy: tf.Tensor, xx: tf.Tensor) -> tf.Tensor:
        inside = (yy >= 0) & (yy < SIZE) & (xx >= 0) & (xx < SIZE)
        yi = tf.cast(tf.clip_by_value(yy, 0, SIZE - 1), tf.int32)
        xi = tf.cast(tf.clip_by_value(xx, 0, SIZE - 1), tf.int32)
        values = tf.gather_nd(x, tf.stack([index, yi, xi], axis=-1))
        return tf.where(inside, values, 0.0)

    return (
        (1 - wy) * (1 - wx) * at(y0, x0)
        + (1 - wy) * wx * at(y0, x0 + 1)
        + wy * (1 - wx) * at(y0 + 1, x0)
        + wy * wx * at(y0 + 1, x0 + 1)
    )


def elastic(x: tf.Tensor, probability: float, alpha: float = 1.5) -> tf.Tensor:
    """Smooth random displacement (Simard et al., 2003), up to about `alpha` pixels."""
    batch = tf.shape(x)[0]
    coarse = tf.random.normal([batch, 4, 4, 2]) * alpha
    field = tf.image.resize(coarse, [SIZE, SIZE], method="bicubic")
    field *= tf.cast(_chance(batch, probability), tf.float32)
    grid_y, grid_x = tf.meshgrid(
        tf.range(SIZE, dtype=tf.float32), tf.range(SIZE, dtype=tf.float32), indexing="ij"
    )
    warped = _sample(x[..., 0], grid_y + field[..., 0], grid_x + field[..., 1])
    return warped[..., None]


def flagged_ones(x: tf.Tensor, y: tf.Tensor, probability: float) -> tf.Tensor:
    """The continental 1: a flag from the top of the stroke down to the left, a fifth to two
    fifths of the digit's height long, in the digit's own stroke width. MNIST's 1s are mostly a
    bare stroke; many writers (UCI's among them) add the flag, and then it was read as 7 or 4."""
    batch = tf.shape(x)[0]
    image = x[..., 0]
    coords = tf.range(SIZE, dtype=tf.float32)
    inked_rows = tf.cast(tf.reduce_max(image, axis=2) > 0.5, tf.float32)
    top = tf.cast(tf.argmax(inked_rows, axis=1), tf.float32)
    bottom = SIZE - 1 - tf.cast(tf.argmax(tf.reverse(inked_rows, [1]), axis=1), tf.float32)
    height = tf.maximum(bottom - top + 1, 1.0)
    top_rows = (coords[None] >= top[:, None]) & (coords[None] < top[:, None] + 2)
    weights = image * tf.cast(top_rows, tf.float32)[:, :, None]
    column = tf.reduce_sum(weights * coords, axis=[1, 2]) / tf.maximum(
        tf.reduce_sum(weights, axis=[1, 2]), 1e-3
    )  # where the stroke's top is
    ink = tf.reduce_sum(tf.cast(image > 0.5, tf.float32), [1, 2])
    width = tf.clip_by_value(ink / height, 1.5, 4.0)  # a 1 is about one stroke wide
    length = height * tf.random.uniform([batch], 0.2, 0.4)
    angle = tf.random.uniform([batch], 35.0, 70.0) * (np.pi / 180)  # below the horizontal
    y0, x0 = (top + 0.5)[:, None, None], column[:, None, None]
    dy = (length * tf.sin(angle))[:, None, None]
    dx = (-length * tf.cos(angle))[:, None, None]
    yy, xx = coords[None, :, None], coords[None, None, :]
    along = tf.clip_by_value(((yy - y0) * dy + (xx - x0) * dx) / (dy * dy + dx * dx), 0.0, 1.0)
    distance = tf.sqrt((yy - y0 - along * dy) ** 2 + (xx - x0 - along * dx) ** 2)
    flag = tf.clip_by_value(width[:, None, None] / 2 + 0.5 - distance, 0.0, 1.0)[..., None]
    chosen = (y[:, 1] > 0.5)[:, None, None, None] & _chance(batch, probability)
    return tf.where(chosen, tf.maximum(x, flag), x)


def noise(x: tf.Tensor, std: float) -> tf.Tensor:
    return tf.clip_by_value(x + tf.random.normal(tf.shape(x), stddev=std), 0.0, 1.0)


def batch_augmenter(
    cfg: DictConfig, seed: int
) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """A function (x, y) -> (x', y) for tf.data's map, built from train.augment."""
    # Data preparation stays in float32 whatever the model's compute policy (bf16 on the fast path).
    options = {"fill_mode": "constant", "seed": seed, "dtype": "float32"}
    geometry = keras.Sequential(
        [
            keras.layers.RandomRotation(cfg.rotation_deg / 360, **options),
            keras.layers.RandomTranslation(cfg.shift, cfg.shift, **options),
            keras.layers.RandomZoom(cfg.zoom, **options),
        ]
    )
    # sigma 0.85 makes the 3-tap kernel the binomial [1, 2, 1] / 4; (p, p): each digit blurred
    # with probability exactly p (a single float would draw the probability from [0, p])
    blur = keras.layers.RandomGaussianBlur(
        (cfg.blur, cfg.blur), kernel_size=3, sigma=(0.85, 0.85), value_range=(0, 1),
        seed=seed, dtype="float32",
    )  # fmt: skip

    def apply(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if cfg.flagged_ones:  # off: not even drawn, so other presets' batches stay as they were
            x = flagged_ones(x, y, cfg.flagged_ones)
        x = thickness(x, cfg.thickness)
        x = elastic(x, cfg.elastic)
        x = geometry(x, training=True)
        x = blur(x, training=True)
        x = noise(x, cfg.noise)
        return x, y

    return apply
