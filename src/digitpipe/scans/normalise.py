"""Turn a scan or photo of a handwritten digit into an MNIST-style 28x28 input.

MNIST digits are light ink on black, cropped to the ink, fitted into 20x20 keeping the aspect
ratio, and placed in 28x28 so that their centre of mass is the centre. Real pictures differ in
every one of those respects, plus lighting, paper and noise; each step below undoes one of them.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from digitpipe.scans.imageops import (
    Components,
    binary_dilation,
    binary_opening,
    centred_by_mass,
    components,
    grey_dilation,
    grey_erosion,
    grey_opening,
    ink_per_column,
    ink_per_row,
    mean_filter,
    otsu_threshold,
    pad_zeros,
    pieces_holding,
    quantile,
    resized,
    rotated,
    stroke_width,
)
from digitpipe.scans.locate import crop_to_writing, reduced
from digitpipe.scans.printed import (
    consecutive_runs,
    remove_box_sides_at_edges,
    remove_form_boxes,
    remove_lines_past_writing,
    remove_rules,
)
from digitpipe.scans.segment import segment_blobs

HEIF_SUFFIXES = frozenset({".heic", ".heif"})  # what phones save photos as (iPhone's default)
IMAGE_SUFFIXES = (
    frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}) | HEIF_SUFFIXES
)
WORK_SIZE = 512  # longer side while normalising: plenty for one digit, bounded time and memory
FULL_SIZE = 4096  # longer side read from the file to find the writing (a 12 MP photo: 4032)
SMALL_SIZE = 64  # pictures smaller than this are enlarged first, so thin strokes stay whole
MIN_CONTRAST = 0.08  # below this spread of grey levels the page is considered blank
SMALL_DIGIT = 40  # digits smaller than this many pixels are enlarged before their stroke is evened
AMBIGUOUS_SPLIT = 0.1  # an Otsu split within 0.5 +- this does not tell ink from paper
MIN_TILT = 4.0  # degrees: a number tilted by less is read as it is
FAINT_INK = 0.35  # ink peaking below this (paper-to-ink contrast) is faint: a pencil, a grey scan
FAINT_STROKE = 0.7  # there, ink above this share of the threshold is kept where it holds strong ink


class ScanError(ValueError):
    """This file cannot give a digit (unreadable, not an image, blank); the message says why."""


def load_gray(path: Path) -> np.ndarray:
    """A picture file as float32 grayscale in [0, 1] (1 = white), upright, at most WORK_SIZE."""
    return load_gray_noted(path)[0]


@functools.cache
def pillow_reads_heif() -> None:
    """Pillow opens HEIC/HEIF once pillow-heif registers its opener, done when the first such file
    comes (the import costs about 0.1 s). The photo comes upright: its rotation is applied."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def load_gray_noted(path: Path, longest: int = WORK_SIZE) -> tuple[np.ndarray, str]:
    """load_gray (longer side at most `longest`), plus a note when only the first of several
    frames or pages was read (animated GIF/WebP, multi-page TIFF, a HEIC burst)."""
    if path.suffix.lower() in HEIF_SUFFIXES:
        pillow_reads_heif()
    try:
        if path.stat().st_size == 0:
            raise ScanError("empty file (0 bytes)")
        with warnings.catch_warnings():
            # a picture between Pillow's two limits is read (its warning was Python's raw
            # two lines on stderr); past the upper one it is an error row (below)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            frames = getattr(image, "n_frames", 1)
            image.seek(0)
            image.draft("L", (longest, longest))  # JPEG: decode at reduced size, cheap
            image = ImageOps.exif_transpose(image)
            image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
            note = f"first of {frames} frames/pages read" if frames > 1 else ""
            return to_gray(image), note
    except Image.DecompressionBombError:
        raise ScanError(
            "image too large to decode safely (Pillow's decompression-bomb limit)"
        ) from None
    except ScanError:
        raise
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


def ink_image(gray: np.ndarray) -> np.ndarray:
    """Ink bright on dark with paper and uneven light removed, whatever the ink's polarity."""
    smooth = mean_filter(gray, 3)  # sensor noise averaged out; a tiny digit stays
    paper = quantile(smooth, 0.5)
    if max(paper - float(smooth.min()), float(smooth.max()) - paper) < MIN_CONTRAST:
        raise ScanError("no digit found (blank image)")
    ink = 1.0 - gray if ink_is_dark(gray) else gray.copy()
    return np.clip(ink - background(ink), 0.0, None)


def ink_is_dark(gray: np.ndarray) -> bool:
    """Dark ink on light paper, or light on dark (chalk on a board)?

    Paper covers most of a digit picture, so ink is the minority side of the Otsu split. A split
    near half and half has cut the paper's own shading or noise instead (a tiny digit on unevenly
    lit paper, a faint grey stroke in a noisy crop); there the ink is the picture's tail: with
    the light's slow change taken out, the grey levels trail off towards the ink's side (their
    skew). On 8,184 development pictures (bench/transfer.py's and a benchmark drawn with another
    seed) the earlier rule there, the side that strays farther from the paper's median, took
    the paper for ink in 13 (10 faint crops, 3 shadows), the skew in 3 faint crops.
    """
    dark_share = float(np.mean(gray <= otsu_threshold(gray)))  # Otsu: class 0 is <= t
    if abs(dark_share - 0.5) > AMBIGUOUS_SPLIT:
        return dark_share < 0.5
    light = mean_filter(gray, max(3, min(gray.shape) // 2) | 1)
    levels = (mean_filter(gray, 5) - light).ravel()
    return float(np.mean((levels - levels.mean()) ** 3)) <= 0  # a tie: dark ink, the usual


def background(ink: np.ndarray) -> np.ndarray:
    """Paper and shadows: a grey opening wider than any stroke, smoothed. Light changes slowly,
    so it is computed on a subsampled picture and scaled back up (a few times cheaper)."""
    step = max(1, min(ink.shape) // 48)
    small = ink[::step, ::step]
    # wider than three strokes: a marker's blob must not pass for paper (it would be hollowed)
    stroke = writing_stroke_width(ink > otsu_threshold(ink))
    size = max(3, min(small.shape) // 4, int(3 * stroke / step) + 1) | 1
    low = mean_filter(grey_opening(small, size), size)
    if step == 1:
        return low
    up = Image.fromarray(low.astype(np.float32), mode="F").resize(
        (ink.shape[1], ink.shape[0]), Image.Resampling.BILINEAR
    )
    return np.asarray(up, dtype=np.float32)


def writing_stroke_width(mask: np.ndarray) -> float:
    """The stroke width of the writing, long thin straight runs (a box's sides, ruled lines)
    left out: their long outline would make a marker's stroke look thin, and the paper
    estimate sized by it would hollow the digit (dark 2-px box lines: 91.0 % per digit on the
    probe, 94.5 % without them counted). Thick runs are shading, not lines, and stay."""
    height, width = mask.shape
    thinnest = max(4, min(height, width) // 30)
    lines = np.zeros_like(mask)
    per_row, per_column = ink_per_row(mask), ink_per_column(mask)
    for ink, found, counts in ((mask, lines, per_row), (mask.T, lines.T, per_column)):
        long = max(3, int(0.8 * ink.shape[1]))
        if not (counts >= long).any():
            continue  # no row holds that much ink (most pictures)
        runs = binary_opening(ink, 1, long)
        for group in consecutive_runs(np.flatnonzero(runs.any(1))):
            if len(group) <= thinnest:
                found[group] |= runs[group]
    rest = mask & ~binary_dilation(lines) if lines.any() else mask
    return stroke_width(rest if rest.any() else mask)


def ink_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels that are ink: Otsu threshold, minus specks, form boxes and printed lines."""
    return ink_pieces(ink).labels > 0


def ink_pieces(ink: np.ndarray) -> Components:
    """The ink mask's connected pieces (what ink_mask keeps), for segment to reuse."""
    peak = float(mean_filter(ink, 3).max())  # robust to single noisy pixels
    if peak < MIN_CONTRAST:
        raise ScanError("no digit found (no ink stands out from the paper)")
    scaled = np.clip(ink / peak, 0, 1)
    threshold = max(otsu_threshold(scaled), 0.25)
    faint = scaled > 0.5 * threshold
    mask = scaled > threshold
    if peak < FAINT_INK:
        mask = pieces_holding(scaled > FAINT_STROKE * threshold, mask).labels > 0
    mask = remove_rules(remove_form_boxes(mask, faint=faint), faint)
    mask = remove_lines_past_writing(remove_box_sides_at_edges(mask, faint))
    pieces = components(mask)
    if pieces.count == 0:
        raise ScanError("no digit found")
    height, width = mask.shape
    keep = np.zeros(pieces.count + 1, dtype=bool)
    largest = pieces.areas.max()
    for i, (box, size) in enumerate(zip(pieces.boxes, pieces.areas, strict=True), start=1):
        box_h, box_w = box[0].stop - box[0].start, box[1].stop - box[1].start
        ruled_line = (box_w > 0.85 * width and box_h < 0.06 * height) or (
            box_h > 0.85 * height and box_w < 0.06 * width
        )
        keep[i] = size >= 0.08 * largest and not ruled_line
    if not keep.any():
        raise ScanError("no digit found (only specks or lines)")
    return pieces.keep(keep)


MNIST_STROKE = 2.9  # median stroke width of MNIST test digits (2*area/outline at 0.5), in pixels


def even_stroke(crop: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
    """Thin a marker or thicken a hairline so that, once scaled, the stroke is MNIST-like."""
    target = MNIST_STROKE / scale  # the wanted width in this picture's pixels
    width = stroke_width(mask)
    # a k x k window changes the width by k - 1 (k odd, to stay centred): never by more than
    # the difference, or a small digit's stroke would be eroded to a thread
    size = min(1 + 2 * int(abs(width - target) // 2), max(3, int(target * 3)) | 1)
    if size < 3 or (0.6 * target < width < 1.6 * target):
        return crop
    grow = grey_dilation if width < target else grey_erosion
    return grow(crop, size)


def enlarged(crop: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A digit smaller than SMALL_DIGIT pixels, enlarged to about that, its blur undone.

    At 14 px one erosion step takes a whole pixel of stroke; enlarged, the stroke is evened by a
    fraction of one. A scan blurs a small digit into grey; a contrast ramp (0.3-0.7 to 0-1)
    makes its strokes solid as MNIST's are. Only here: on larger faint digits it broke strokes.
    """
    factor = SMALL_DIGIT / max(crop.shape)
    if factor <= 1:
        return crop, mask
    size = (round(crop.shape[1] * factor), round(crop.shape[0] * factor))
    big = np.clip((resized(crop, size) - 0.3) / 0.4, 0.0, 1.0)
    return big, resized(mask, size) > 0.5


def fit_to_mnist(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Crop to the ink, even the stroke, fit 20x20 keeping aspect, pad to 28x28, centre of mass
    to the centre, MNIST-like contrast."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    near_ink = binary_dilation(mask, iterations=2)
    crop = (ink * near_ink)[top:bottom, left:right]
    crop_mask = mask[top:bottom, left:right]
    crop = np.clip(crop / max(float(quantile(crop[crop_mask], 0.9)), 1e-6), 0.0, 1.0)
    crop, crop_mask = enlarged(crop, crop_mask)
    h, w = crop.shape
    pad = max(h, w) // 4 + 1  # room for a thickened stroke at the edges
    crop = even_stroke(pad_zeros(crop, pad), pad_zeros(crop_mask, pad), 20.0 / max(h, w))
    rows, cols = np.flatnonzero(crop.max(1) > 0.05), np.flatnonzero(crop.max(0) > 0.05)
    if len(rows) == 0:
        raise ScanError("no digit found (ink vanished when evening the stroke)")
    crop = crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resample = Image.Resampling.LANCZOS if max(h, w) > 20 else Image.Resampling.BICUBIC
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize((new_w, new_h), resample)
    box = np.zeros((28, 28), dtype=np.float32)
    y0, x0 = (28 - new_h) // 2, (28 - new_w) // 2
    box[y0 : y0 + new_h, x0 : x0 + new_w] = np.asarray(small, dtype=np.float32) / 255.0
    shifted = np.clip(centred_by_mass(box), 0.0, 1.0)
    return shifted / max(float(shifted.max()), 1e-6)


def normalize(gray: np.ndarray) -> np.ndarray:
    """Grayscale picture (1 = white) -> 28x28 float32, light digit on black, MNIST-style."""
    ink = ink_image(gray)
    return fit_to_mnist(ink, ink_mask(ink)).astype(np.float32)


def normalize_digits(gray: np.ndarray, split: bool = True) -> list[np.ndarray]:
    """Every digit of a picture, left to right, each as an MNIST-style 28x28 input (every cut
    of touching digits taken; `read_digits` lets the model judge them)."""
    return digit_inputs(gray, split)[0]


def digit_inputs(gray: np.ndarray, split: bool = True) -> tuple[list[np.ndarray], list[Whole]]:
    """The digits' inputs, left to right, and each blob cut into touching digits read whole
    (Picture.wholes). A number written (or photographed) at a tilt is turned level first."""
    ink = ink_image(gray)
    pieces = ink_pieces(ink)
    mask = pieces.labels > 0
    blobs = segment_blobs(mask, pieces) if split else [[mask]]
    tilt = baseline_tilt([part for blob in blobs for part in blob])
    if abs(tilt) >= MIN_TILT:
        # only the ink kept (a removed line or box, turned, would no longer look like one)
        ink = rotated(ink * binary_dilation(mask, iterations=2), -tilt)  # turned level
        pieces = ink_pieces(ink)
        blobs = segment_blobs(pieces.labels > 0, pieces)
    inputs: list[np.ndarray] = []
    wholes: list[Whole] = []
    uncut = [width_of(blob[0]) for blob in blobs if len(blob) == 1]
    digit_width = float(np.median(uncut)) if uncut else 0.0
    for blob in blobs:
        if len(blob) > 1:
            union = np.logical_or.reduce(blob)
            whole = fit_to_mnist(ink, union).astype(np.float32)
            height, width = width_of(union.T), width_of(union)  # the transpose's width: height
            wide = width / digit_width if digit_width else 0.0
            wholes.append(Whole(len(inputs), len(blob), whole, width / height, wide))
        inputs += [fit_to_mnist(ink, part).astype(np.float32) for part in blob]
    return inputs, wholes


def width_of(mask: np.ndarray) -> int:
    """Columns from the first inked to the last."""
    columns = np.flatnonzero(mask.any(axis=0))
    return int(columns[-1] - columns[0] + 1)


def baseline_tilt(parts: list[np.ndarray]) -> float:
    """The angle (degrees, counter-clockwise) of the line through the middles of the digits'
    boxes (a box's middle, unlike the centre of mass, does not depend on the digit's shape: a
    7's sits as high as a 4's), from three digits on: two digits of unequal height give too
    noisy a line."""
    if len(parts) < 3:
        return 0.0
    middles = []
    for part in parts:
        rows, columns = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
        middles.append(((columns[0] + columns[-1]) / 2, (rows[0] + rows[-1]) / 2))
    x, y = np.array(middles).T
    slope = np.polyfit(x, y, 1)[0]
    return float(np.degrees(np.arctan(-slope)))


def naive(gray: np.ndarray) -> np.ndarray:
    """The naive recipe, for comparison: whole picture resized to 28x28, inverted."""
    small = Image.fromarray((gray * 255).astype(np.uint8)).resize(
        (28, 28), Image.Resampling.BILINEAR
    )
    return 1.0 - np.asarray(small, dtype=np.float32) / 255.0


@dataclass
class Whole:
    """A blob cut into `count` touching digits, inputs[first : first + count], and its own
    input: the reader keeps the cut only where its digits read surer than the whole (a wide
    0 or 6 has thin places too)."""

    first: int
    count: int
    input: np.ndarray
    aspect: float = 1.0  # the blob's width over its height
    wide: float = 0.0  # its width over the median uncut digit's of the picture (0: none uncut)


@dataclass
class Picture:
    """What one file gave: its digits' 28x28 inputs (left to right), its cuts of touching
    digits read whole (see Whole), a thumbnail if asked, and an error (nothing read) or a note
    (read, with a caveat)."""

    inputs: list[np.ndarray] = field(default_factory=list)
    thumbnail: np.ndarray | None = None
    error: str = ""
    note: str = ""
    wholes: list[Whole] = field(default_factory=list)


def working_picture(full: np.ndarray) -> np.ndarray:
    """The picture at the size digits are read at: a large one cropped to its writing first
    (at full resolution) and then reduced to WORK_SIZE; a tiny one enlarged to twice SMALL_SIZE."""
    if max(full.shape) > WORK_SIZE:
        return reduced(crop_to_writing(full), WORK_SIZE)
    if max(full.shape) < SMALL_SIZE:
        factor = SMALL_SIZE * 2 / max(full.shape)
        size = (round(full.shape[1] * factor), round(full.shape[0] * factor))
        return np.asarray(Image.fromarray(full, mode="F").resize(size, Image.Resampling.BICUBIC))
    return full


def started() -> None:
    """Nothing: a worker process that runs it has imported this module and is ready."""


def read_digits(path: Path, split: bool, thumbnail: bool) -> Picture:
    """One file, start to end. Top-level and light on imports, so worker processes can run it
    for a folder of scans."""
    try:
        full, note = load_gray_noted(path, FULL_SIZE)
        gray = working_picture(full)
        thumb = None
        if thumbnail:
            small = Image.fromarray((reduced(full, 192) * 255).astype(np.uint8))
            small.thumbnail((96, 56))
            thumb = np.asarray(small)
        inputs, wholes = digit_inputs(gray, split=split)
        return Picture(inputs, thumb, note=note, wholes=wholes)
    except ScanError as exc:
        return Picture(error=str(exc))
