"""Coarse copies: an MNIST digit as a form scanner's 8x8 grid holds it, read back by the reader,
and the share of them a training sees."""

import keras
import numpy as np

from digitpipe import coarse
from digitpipe.config import compose
from digitpipe.mnist import idx, splits
from digitpipe.stages.train import training_inputs
from tests.helpers.project import REPO


def a_one() -> np.ndarray:
    """A bare upright 1 as MNIST writes it: 3 px wide, 18 tall."""
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[5:23, 13:16] = 1.0
    return digit


def test_the_grid_counts_a_32_px_bitmap_in_4x4_blocks_with_the_digit_as_tall_as_the_grid():
    grid = coarse.grid(a_one(), np.random.default_rng(0))
    assert grid.shape == (8, 8)
    assert grid.min() >= 0 and grid.max() <= 16 and np.array_equal(grid, grid.round())
    assert (grid > 0).any(axis=1).all()  # every row: the digit's height fills the bitmap


def test_a_narrow_digit_is_widened_towards_uci_digits_width():
    """MNIST's 1 is a bare stroke; UCI's are 4.6 of 8 columns wide on average."""
    columns = [(coarse.grid(a_one(), np.random.default_rng(s)) > 0).any(0).sum() for s in range(5)]
    assert min(columns) >= 3  # its own aspect (3 of 18 px) would fill 2 of 8 columns at most


def test_a_copy_is_an_mnist_style_input_that_differs_from_the_digit(mnist_raw):
    images = idx.parse(idx.read_bytes(mnist_raw / "t10k-images-idx3-ubyte"))[:8]
    digit = splits.to_model_input(images)
    copies = coarse.copies(digit, seed=1)
    assert copies.shape == digit.shape and copies.dtype == np.float32
    assert copies.min() >= 0 and copies.max() <= 1
    assert np.abs(copies - digit).mean() > 0.03  # blockier, its stroke evened
    rows = copies[..., 0].sum(axis=2)  # ink per row: centred as MNIST's are (by mass)
    middle = (rows * np.arange(28)).sum(axis=1) / rows.sum(axis=1)
    assert np.all(abs(middle - 13.5) < 2)


def test_a_digit_too_faint_to_leave_ink_in_the_grid_is_left_as_it_is():
    """The pen threshold is drawn per digit (0.2-0.45): a 0.35 grey bar leaves ink under some
    draws and none under others, and then there is nothing to copy (it used to crash)."""
    faint = np.zeros((28, 28), dtype=np.float32)
    faint[5:23, 12:16] = 0.35
    made = [coarse.copies(faint[None], seed)[0] for seed in range(12)]
    kept = [np.array_equal(copy, faint) for copy in made]
    assert any(kept) and not all(kept)
    assert all(copy.min() >= 0 and copy.max() <= 1 for copy in made)


def test_copies_follow_the_seed_and_leave_an_empty_image_alone():
    x = np.stack([a_one(), np.zeros((28, 28), np.float32)])
    assert np.array_equal(coarse.copies(x, 3), coarse.copies(x, 3))
    assert not np.array_equal(coarse.copies(x, 3)[0], coarse.copies(x, 4)[0])
    assert not coarse.copies(x, 3)[1].any()


def test_a_training_with_share_one_sees_only_copies_and_with_share_zero_only_digits():
    rng = np.random.default_rng(0)
    x = np.zeros((64, 28, 28, 1), dtype=np.float32)
    x[:, 5:23, 12:16] = rng.uniform(0.6, 1.0, (64, 18, 4, 1))
    y = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)
    cfg = compose(REPO / "conf", ["train.coarse_digits=1", "train.batch_size=64"]).train
    ((batch, labels),) = list(training_inputs(x, y, cfg)["x"])
    copies, seen = coarse.copies(x, cfg.seed), batch.numpy()
    distance = np.abs(seen[:, None] - copies[None]).sum(axis=(2, 3, 4))  # seen x copy
    assert np.allclose(distance.min(axis=1), 0, atol=1e-3)  # every digit seen is a copy...
    assert np.abs(seen[:, None] - x[None]).sum(axis=(2, 3, 4)).min() > 1  # ... none the digit
    assert np.array_equal(labels.numpy().sum(axis=0), y.sum(axis=0))  # all 64, labels with them
    plain = training_inputs(x, y, compose(REPO / "conf", ["train.coarse_digits=0"]).train)
    assert plain["x"] is x  # off: the arrays themselves, no copies made


def test_a_share_between_nothing_and_all_copies_about_that_share_afresh_each_epoch():
    x = np.zeros((512, 28, 28, 1), dtype=np.float32)
    x[:, 5:23, 12:15] = 1.0
    x[:, 0, :9, 0] = (np.arange(512)[:, None] >> np.arange(9) & 1) * 0.2  # an id, too faint
    y = keras.utils.to_categorical(np.arange(512) % 10, 10)  # to be copied
    cfg = compose(REPO / "conf", ["train.coarse_digits=0.3", "train.batch_size=512"]).train
    keras.utils.set_random_seed(cfg.seed)
    data = training_inputs(x, y, cfg)["x"]

    def copied() -> set[int]:
        ((batch, _),) = list(data)  # one epoch
        ids = (batch.numpy()[:, 0, :9, 0] > 0.1) @ (1 << np.arange(9))
        originals = np.abs(batch.numpy()[:, 5:23, 12:15] - 1).max(axis=(1, 2, 3)) < 1e-3
        return set(range(512)) - set(ids[originals].tolist())

    first, second = copied(), copied()
    assert all(0.24 < len(c) / 512 < 0.36 for c in (first, second)), (len(first), len(second))
    assert first != second  # other digits in the next epoch
