"""Scan-like augmentation: each transform changes the digit in the way it claims."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from digitpipe import augment
from digitpipe.config import compose
from tests.helpers.project import REPO


def bar_batch(n=8):
    x = np.zeros((n, 28, 28, 1), dtype=np.float32)
    x[:, 8:20, 12:15, 0] = 1.0  # a vertical stroke, 3 px wide
    return tf.constant(x)


def test_thickness_makes_strokes_thicker_or_thinner():
    tf.random.set_seed(0)
    x = bar_batch(64)
    out = augment.thickness(x, probability=1.0).numpy()
    ink = out.sum(axis=(1, 2, 3))
    base = float(x.numpy()[0].sum())
    assert (ink > base).any() and (ink < base).any()
    assert np.all((ink > base) | (ink < base))


def test_elastic_moves_ink_but_keeps_it():
    tf.random.set_seed(1)
    x = bar_batch()
    out = augment.elastic(x, probability=1.0).numpy()
    assert np.abs(out - x.numpy()).mean() > 0.005
    assert abs(out.sum() - x.numpy().sum()) / x.numpy().sum() < 0.3
    assert np.array_equal(augment.elastic(x, probability=0.0).numpy(), x.numpy())


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_batch_augmenter_keeps_shapes_range_and_labels(policy):
    cfg = compose(REPO / "conf", ["train.augment.enabled=true"]).train.augment
    keras.mixed_precision.set_dtype_policy(policy)  # the fast path trains in bf16
    try:
        apply = augment.batch_augmenter(cfg, seed=3)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    x, y = bar_batch(), tf.one_hot(tf.range(8) % 10, 10)
    out_x, out_y = apply(x, y)
    assert out_x.shape == x.shape and out_x.dtype == tf.float32
    assert float(tf.reduce_min(out_x)) >= 0.0 and float(tf.reduce_max(out_x)) <= 1.0
    assert np.array_equal(out_y.numpy(), y.numpy())
    assert np.abs(out_x.numpy() - x.numpy()).mean() > 0.01
