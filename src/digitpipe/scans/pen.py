"""An 8x8 grid of ink counts (UCI's handwritten digits, a coarse copy's) drawn as pen strokes:
shared by the scan benchmark's pictures and training's coarse copies, and kept apart from the
benchmark generator so that training depends on the drawing alone."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def strokes(digit8: np.ndarray, size: int, rng: np.random.Generator, pen: int = 0) -> np.ndarray:
    """An 8x8 UCI digit (0..16) as crisp pen strokes, size x size, ink = 1.

    pen > 0 thickens the stroke by that many pixels (marker), pen < 0 thins it (pencil).
    """
    image = Image.fromarray((digit8 / 16.0 * 255).astype(np.uint8))
    ink = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    ink = 1 / (1 + np.exp(-(ink - rng.uniform(0.35, 0.55)) * 14))
    if pen:
        grown = Image.fromarray((ink * 255).astype(np.uint8))
        kernel = 2 * abs(pen) + 1
        grown = grown.filter(
            ImageFilter.MaxFilter(kernel) if pen > 0 else ImageFilter.MinFilter(kernel)
        )
        ink = np.asarray(grown, dtype=np.float32) / 255.0
    return ink
