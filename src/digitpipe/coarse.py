"""Coarse copies of MNIST digits: each digit as a form scanner's 8x8 grid holds it, drawn large
again and read back by the scan reader.

UCI's handwritten digits (the scan benchmark's) were made that way: a 32x32 bitmap of the digit,
its height filling the bitmap, counted in 4x4 blocks. MNIST has no digit like them, and the
reader gives the model what it makes of them: blocky outlines, strokes of uneven width, a 1 as
wide as a 7. Training on a share of such copies (`train.coarse_digits`) teaches the model that
look without a single UCI digit. Read back by the reader's own `fit_to_mnist`, a copy is what the
model will be given for such a picture (copies fitted by simpler code of their own taught less,
in two exploratory runs).
"""

from __future__ import annotations

import cv2
import numpy as np

from digitpipe.scans.normalise import fit_to_mnist
from digitpipe.scans.pen import strokes

BITMAP = 32  # the scanner's bitmap, UCI's: 32x32 counted in 4x4 blocks gives the 8x8 grid
BLOCK = 4
UCI_WIDTH = 22  # UCI digits' mean ink width, in pixels of the 32-px bitmap (5.5 of 8 columns)
SIZES = (28, 80)  # pixels the grid is drawn at before the reader fits it (numpy's low, high)
MARGIN = 4  # paper around the drawn grid, so that the reader finds its edges
INK = 0.3  # a digit with no pixel this dark has nothing to copy: it is left as it is


def grid(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The 8x8 grid of ink counts (0..16) of a 28x28 digit (ink 1): its height stretched to the
    bitmap's, its width moved geometrically halfway to UCI's mean width (UCI's narrow digits,
    its 1s, are wider than MNIST's), and a pen-width threshold drawn per digit."""
    rows, cols = np.flatnonzero(digit.max(1) > INK), np.flatnonzero(digit.max(0) > INK)
    crop = np.ascontiguousarray(digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], "f4")
    height, width = crop.shape
    wide = int(np.clip(round(np.sqrt(width * BITMAP / height * UCI_WIDTH)), BLOCK, BITMAP))
    stretched = cv2.resize(crop, (wide, BITMAP), interpolation=cv2.INTER_LINEAR)
    bitmap = np.zeros((BITMAP, BITMAP), dtype=np.float32)
    left = (BITMAP - wide) // 2
    bitmap[:, left : left + wide] = stretched > rng.uniform(0.2, 0.45)
    cells = BITMAP // BLOCK
    return bitmap.reshape(cells, BLOCK, cells, BLOCK).sum(axis=(1, 3))


def coarse_copy(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One coarse copy: the grid drawn as the scan benchmark draws UCI's (`pen.strokes`), then
    fitted into 28x28 by the reader, as a picture of it would be. A digit too faint to leave
    ink in the grid is returned as it is."""
    if digit.max() <= INK:
        return digit
    cells = grid(digit, rng)
    ink = np.pad(strokes(cells, int(rng.integers(*SIZES)), rng), MARGIN)
    if not (ink > 0.5).any():
        return digit
    return fit_to_mnist(ink, ink > 0.5)


def copies(images: np.ndarray, seed: int) -> np.ndarray:
    """A coarse copy of every image (N x 28 x 28 [x 1], ink 1), same shape, float32; about 0.2 ms
    each on one core, so the training set's copies cost seconds, made afresh at every training."""
    rng = np.random.default_rng(seed)
    flat = images.reshape(len(images), 28, 28)
    out = np.empty(flat.shape, dtype=np.float32)
    for index, digit in enumerate(flat):
        out[index] = coarse_copy(digit, rng)
    return out.reshape(images.shape)
