"""Turn a scan or photo of a handwritten digit into an MNIST-style 28x28 input.

MNIST digits are light ink on black, cropped to the ink, fitted into 20x20 keeping the aspect
ratio, and placed in 28x28 so that their centre of mass is the centre. Real pictures differ in
every one of those respects, plus lighting, paper and noise; each step below undoes one of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
WORK_SIZE = 512  # longer side while normalising: plenty for one digit, bounded time and memory
MIN_CONTRAST = 0.08  # below this spread of grey levels the page is considered blank


class ScanError(ValueError):
    """This file cannot give a digit (unreadable, not an image, blank); the message says why."""


def load_gray(path: Path) -> np.ndarray:
    """A picture file as float32 grayscale in [0, 1] (1 = white), upright, at most WORK_SIZE."""
    try:
        with Image.open(path) as image:
            image.draft("L", (WORK_SIZE, WORK_SIZE))  # JPEG: decode at reduced size, cheap
            image = ImageOps.exif_transpose(image)
            image.thumbnail((WORK_SIZE, WORK_SIZE), Image.Resampling.LANCZOS)
            return to_gray(image)
    except Image.DecompressionBombError:
        raise ScanError(
            "image too large to decode safely (Pillow's decompression-bomb limit)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScanError(f"not a readable image: {reason}") from None


def to_gray(image: Image.Image) -> np.ndarray:
    """Grayscale of any Pillow mode: 16-bit, CMYK, palette, and transparency over paper."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        return (values - low) / (high - low) if high > low else np.ones_like(values)
    if image.mode == "P" or "A" in image.getbands():
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = rgba[..., 3]
        if alpha.min() < 0.99:  # transparent background: lay the drawing on contrasting paper
            opaque = gray[alpha > 0.5]
            paper = 0.0 if opaque.size and np.median(opaque) > 0.5 else 1.0
            gray = alpha * gray + (1 - alpha) * paper
        return gray
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def otsu_threshold(values: np.ndarray) -> float:
    """The grey level that best separates two classes (Otsu, 1979), on [0, 1] data."""
    hist, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    weights = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(weights)
    w1 = w0[-1] - w0
    m0 = np.cumsum(weights * centres) / np.maximum(w0, 1e-12)
    m1 = (np.sum(weights * centres) - np.cumsum(weights * centres)) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between))])


def ink_image(gray: np.ndarray) -> np.ndarray:
    """Ink bright on dark with paper and uneven light removed, whatever the ink's polarity."""
    if float(np.percentile(gray, 99) - np.percentile(gray, 1)) < MIN_CONTRAST:
        raise ScanError("no digit found (blank image)")
    # Paper covers most of a digit picture: ink is the minority side of the Otsu split.
    dark_share = float(np.mean(gray < otsu_threshold(gray)))
    ink = 1.0 - gray if dark_share < 0.5 else gray.copy()
    # Background (paper + shadows) = grey opening wider than any stroke, smoothed; subtract it.
    size = max(7, min(ink.shape) // 4) | 1
    background = ndimage.uniform_filter(ndimage.grey_opening(ink, size=size), size=size)
    return np.clip(ink - background, 0.0, None)


def ink_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels that are ink: Otsu threshold, minus specks and thin lines spanning the picture."""
    peak = float(np.percentile(ink, 99.5))
    if peak < MIN_CONTRAST:
        raise ScanError("no digit found (no ink stands out from the paper)")
    scaled = np.clip(ink / peak, 0, 1)
    mask = scaled > max(otsu_threshold(scaled), 0.25)
    labels, count = ndimage.label(mask)
    if count == 0:
        raise ScanError("no digit found")
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    boxes = ndimage.find_objects(labels)
    height, width = mask.shape
    keep = np.zeros(count + 1, dtype=bool)
    for i, (box, size) in enumerate(zip(boxes, sizes, strict=True), start=1):
        box_h, box_w = box[0].stop - box[0].start, box[1].stop - box[1].start
        ruled_line = (box_w > 0.85 * width and box_h < 0.06 * height) or (
            box_h > 0.85 * height and box_w < 0.06 * width
        )
        keep[i] = size >= 0.08 * sizes.max() and not ruled_line
    cleaned = keep[labels]
    if not cleaned.any():
        raise ScanError("no digit found (only specks or lines)")
    return cleaned


def fit_to_mnist(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit 20x20 keeping aspect, pad to 28x28, centre of mass to the centre."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    near_ink = ndimage.binary_dilation(mask, iterations=2)
    crop = (ink * near_ink)[top:bottom, left:right]
    crop = crop / max(float(np.percentile(crop[mask[top:bottom, left:right]], 90)), 1e-6)
    crop = np.clip(crop, 0.0, 1.0)
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize(
        (new_w, new_h), Image.Resampling.LANCZOS if max(h, w) > 20 else Image.Resampling.BICUBIC
    )
    box = np.zeros((28, 28), dtype=np.float32)
    y0, x0 = (28 - new_h) // 2, (28 - new_w) // 2
    box[y0 : y0 + new_h, x0 : x0 + new_w] = np.asarray(small, dtype=np.float32) / 255.0
    cy, cx = ndimage.center_of_mass(box)
    shifted = ndimage.shift(box, (13.5 - cy, 13.5 - cx), order=1, mode="constant", cval=0.0)
    shifted = np.clip(shifted, 0.0, 1.0)
    return shifted / max(float(shifted.max()), 1e-6)


def normalize(gray: np.ndarray) -> np.ndarray:
    """Grayscale picture (1 = white) -> 28x28 float32, light digit on black, MNIST-style."""
    ink = ink_image(gray)
    return fit_to_mnist(ink, ink_mask(ink)).astype(np.float32)


def naive(gray: np.ndarray) -> np.ndarray:
    """The naive recipe, for comparison: whole picture resized to 28x28, inverted."""
    small = Image.fromarray((gray * 255).astype(np.uint8)).resize(
        (28, 28), Image.Resampling.BILINEAR
    )
    return 1.0 - np.asarray(small, dtype=np.float32) / 255.0
