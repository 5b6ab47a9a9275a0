"""Coarse copies of MNIST digits: each digit as a form scanner's 8x8 grid holds it, drawn large
again and read back by the scan reader.

UCI's handwritten digits (the scan benchmark's) were made that way: a 32x32 bitmap of the digit,
its height filling the bitmap, counted in 4x4 blocks. MNIST has no digit like them, and the
reader gives the model what it makes of them: blocky outlines, strokes of uneven width, a 1 as
wide as a 7. Training on a share of such copies (`train.coarse_digits`) teaches the model that
look without a single UCI digit; read back by the reader's own `fit_to_mnist`, the copies are what
the model will be given (copies fitted by simpler code of their own taught 1.4 and 1.8 points
less: digits read right of 960 development pictures, one seed each).
"""

from __future__ import annotations

import cv2
import numpy as np

BITMAP = 32  # the scanner's bitmap, UCI's: 32x32 counted in 4x4 blocks gives the 8x8 grid
BLOCK = 4
UCI_WIDTH = 22  # UCI digits' mean ink width, in pixels of the 32-px bitmap (5.5 of 8 columns)
SIZES = (28, 80)  # pixels the grid is drawn at before the reader fits it (numpy's low, high)


def grid(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The 8x8 grid of ink counts (0..16) of a 28x28 digit (ink 1): its height stretched to the
    bitmap's, its width drawn halfway (geometrically) to UCI's mean, which narrow digits such as
    1 are nearer to there than in MNIST, and a pen-width threshold drawn per digit."""
    rows, cols = np.flatnonzero(digit.max(1) > 0.3), np.flatnonzero(digit.max(0) > 0.3)
    crop = np.ascontiguousarray(digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], "f4")
    height, width = crop.shape
    wide = int(np.clip(round(np.sqrt(width * BITMAP / height * UCI_WIDTH)), BLOCK, BITMAP))
    stretched = cv2.resize(crop, (wide, BITMAP), interpolation=cv2.INTER_LINEAR)
    bitmap = np.zeros((BITMAP, BITMAP), dtype=np.float32)
    left = (BITMAP - wide) // 2
    bitmap[:, left : left + wide] = stretched > rng.uniform(0.2, 0.45)
    cells = BITMAP // BLOCK
    return bitmap.reshape(cells, BLOCK, cells, BLOCK).sum(axis=(1, 3))


def copy(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One coarse copy: the grid drawn as the scan benchmark draws UCI's (`synthetic.strokes`),
    then fitted into 28x28 by the reader, as a picture of it would be."""
    from digitpipe.scans.normalise import fit_to_mnist
    from digitpipe.scans.synthetic import strokes

    ink = np.pad(strokes(grid(digit, rng), int(rng.integers(*SIZES)), rng), BLOCK)
    return fit_to_mnist(ink, ink > 0.5)


def copies(images: np.ndarray, seed: int) -> np.ndarray:
    """A coarse copy of every image (N x 28 x 28 [x 1], ink 1), same shape, float32; about 0.15 ms
    each on one core, so the training set's copies cost seconds, made afresh at every training."""
    rng = np.random.default_rng(seed)
    flat = images.reshape(len(images), 28, 28)
    out = np.empty(flat.shape, dtype=np.float32)
    for index, digit in enumerate(flat):
        out[index] = copy(digit, rng) if digit.max() > 0.3 else digit
    return out.reshape(images.shape)
