"""Scan-like augmentation: each transform changes the digit in the way it claims."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

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


def test_flagged_ones_adds_a_flag_left_of_the_top_of_ones_only():
    x = bar_batch(4)  # a bare vertical stroke, rows 8-19, columns 12-14
    labels = tf.one_hot([1, 1, 7, 4], 10)
    out = augment.flagged_ones(x, labels, probability=1.0).numpy()
    added = out - x.numpy()
    for one in (0, 1):
        rows, cols = np.nonzero(added[one, ..., 0] > 0.5)
        assert len(rows) >= 3  # a flag, in about the stroke's width
        assert cols.max() < 12 and rows.min() >= 8  # left of the stroke, from its top down
        assert rows.max() <= 8 + 0.4 * 12 + 2  # at most two fifths of the digit's height
    assert np.array_equal(out[2:], x.numpy()[2:])  # a 7 and a 4 are left as they were
    assert np.array_equal(augment.flagged_ones(x, labels, 0.0).numpy(), x.numpy())


def test_transforms_left_off_are_not_run(monkeypatch):
    """flagged_ones at 0 draws no random numbers: a preset without it sees the batches it saw
    before it existed."""
    cfg = compose(REPO / "conf", ["train.augment.enabled=true"]).train.augment
    assert cfg.flagged_ones == 0
    monkeypatch.setattr(augment, "flagged_ones", lambda *a: pytest.fail("flagged_ones ran"))
    augment.batch_augmenter(cfg, seed=3)(bar_batch(), tf.one_hot(tf.ones(8, tf.int32), 10))


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


def test_blur_is_the_binomial_kernel_on_the_chosen_share_of_digits():
    cfg = compose(REPO / "conf", ["train.augment.enabled=true"]).train.augment
    x = tf.constant((np.random.default_rng(0).random((4000, 28, 28, 1)) > 0.7).astype("float32"))
    only_blur = {"thickness": 0.0, "elastic": 0.0, "rotation_deg": 0, "shift": 0, "zoom": 0,
                 "noise": 0.0, "blur": 0.3}  # fmt: skip
    out, _ = augment.batch_augmenter(OmegaConf.merge(cfg, only_blur), seed=0)(x, x)
    changed = np.any(np.abs(out.numpy() - x.numpy()) > 1e-6, axis=(1, 2, 3))
    assert 0.27 < changed.mean() < 0.33
    binomial = np.outer([1, 2, 1], [1, 2, 1]) / 16
    blurred = out.numpy()[changed][0, 1:-1, 1:-1, 0]
    image = x.numpy()[changed][0, :, :, 0]
    taps = [(i, j) for i in range(3) for j in range(3)]
    expected = sum(binomial[i, j] * image[i : i + 26, j : j + 26] for i, j in taps)
    assert np.abs(blurred - expected).max() < 1e-3


def test_keras_elastic_layer_still_has_the_defects_that_keep_it_out():
    """augment.elastic stays hand-written while Keras's layer mixes up digits inside tf.data.
    When this fails, Keras has fixed it: swap keras.layers.RandomElasticTransform in."""
    x = np.zeros((64, 28, 28, 1), np.float32)
    for i in range(64):
        x[i, 6:22, 4 + i % 20 : 6 + i % 20, 0] = 1.0  # a bar in a different place per image
    layer = keras.layers.RandomElasticTransform(
        factor=1.0, scale=1.0, fill_mode="constant", value_range=(0, 1), seed=1
    )
    batches = tf.data.Dataset.from_tensor_slices(x).batch(64)
    out = next(iter(batches.map(lambda b: layer(b, training=True)))).numpy()
    copies_of_first = sum(np.allclose(out[i], out[0], atol=1e-4) for i in range(1, 64))
    assert copies_of_first > 0, "Keras's elastic layer now keeps each digit: use it"


def test_a_seeded_augmented_training_sees_the_same_batches_every_time():
    """A fixed seed gives the same training on one machine, augmented or not: the augmentation
    and the coarse copies' share draw their random numbers batch after batch, never from batches
    mapped in parallel (which made scan_robust's weights differ run to run)."""
    from digitpipe.stages.train import training_inputs

    overrides = ["experiment=scan_robust", "train.augment.enabled=true", "train.batch_size=64"]
    cfg = compose(REPO / "conf", overrides).train
    assert cfg.coarse_digits > 0
    rng = np.random.default_rng(0)
    x = rng.random((64 * 12, 28, 28, 1)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, len(x)), 10)

    def batches() -> list[np.ndarray]:
        keras.utils.set_random_seed(cfg.seed)  # as compiled_model does before fit
        return [b.numpy() for b, _ in training_inputs(x, y, cfg)["x"]]

    first, second = batches(), batches()
    assert len(first) == 12
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
