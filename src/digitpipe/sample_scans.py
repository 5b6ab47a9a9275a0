"""Make the committed sample scans: real handwriting rendered as ink on paper, scanner-style.

The digits come from scikit-learn's copy of the UCI handwritten digits (43 writers, not MNIST),
so the samples test transfer to handwriting the model never saw. Each is rendered with the
artefacts of a cheap scan or phone photo: offset, size, stroke width, blur, noise, uneven light,
and a few with light ink on a dark board.

    python -m digitpipe.sample_scans --out data/scans --per-digit 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from sklearn.datasets import load_digits

FORMATS = ("png", "jpg", "bmp", "tiff")


def render(digit8: np.ndarray, rng: np.random.Generator, inverted: bool) -> Image.Image:
    """One 8x8 UCI digit (0..16) as a scanned picture."""
    size = int(rng.integers(40, 110))
    strokes = Image.fromarray((digit8 / 16.0 * 255).astype(np.uint8)).resize(
        (size, size), Image.Resampling.BICUBIC
    )
    ink = np.asarray(strokes, dtype=np.float32) / 255.0
    ink = 1 / (1 + np.exp(-(ink - rng.uniform(0.35, 0.55)) * 14))  # crisp pen edges
    if rng.random() < 0.4:  # thicker marker or thinner pen
        grown = Image.fromarray((ink * 255).astype(np.uint8))
        grown = grown.filter(
            ImageFilter.MaxFilter(5) if rng.random() < 0.5 else ImageFilter.MinFilter(3)
        )
        ink = np.asarray(grown, dtype=np.float32) / 255.0
    height = int(size * rng.uniform(1.3, 2.0))
    width = int(size * rng.uniform(1.3, 2.4))
    canvas = np.zeros((height, width), dtype=np.float32)
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    canvas[top : top + size, left : left + size] = ink
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    light = (
        1.0 - rng.uniform(0.0, 0.35) * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy + 1) / 2
    )
    if inverted:  # chalk on a dark board
        paper, pen = rng.uniform(0.1, 0.25), rng.uniform(0.8, 0.95)
    else:
        paper, pen = rng.uniform(0.8, 0.97), rng.uniform(0.05, 0.3)
    picture = (paper + (pen - paper) * canvas) * light
    picture += rng.normal(0, rng.uniform(0.01, 0.04), picture.shape)  # sensor noise / paper grain
    image = Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.3)))


def make(out: Path, per_digit: int = 3, seed: int = 2026) -> pd.DataFrame:
    """Write per_digit scans of each digit plus labels.csv; returns the labels table."""
    rng = np.random.default_rng(seed)
    digits = load_digits()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for digit in range(10):
        pool = np.flatnonzero(digits.target == digit)
        for k, index in enumerate(rng.choice(pool, size=per_digit, replace=False)):
            number = len(rows) + 1
            image = render(digits.images[index], rng, inverted=(number % 10 == 7))
            if k == 1 and digit % 3 == 0:  # blue ballpoint on a colour scan
                gray = np.asarray(image, dtype=np.float32) / 255
                image = Image.fromarray(
                    (
                        np.stack([gray * 0.85, gray * 0.9, np.minimum(gray * 1.2, 1)], -1) * 255
                    ).astype(np.uint8)
                )
            name = f"scan_{number:03d}.{FORMATS[number % len(FORMATS)]}"
            image.save(out / name)
            rows.append({"file": name, "label": digit})
    labels = pd.DataFrame(rows)
    labels.to_csv(out / "labels.csv", index=False)
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/scans"))
    parser.add_argument("--per-digit", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    labels = make(args.out, args.per_digit, args.seed)
    print(f"wrote {len(labels)} scans and labels.csv to {args.out}")


if __name__ == "__main__":
    main()
