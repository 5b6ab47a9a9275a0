"""Find the handwriting on a large picture before it is reduced: a phone photo of a page keeps
its number sharp, and the page edge, shadow, table and printed text around it are left out."""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitpipe.scans.imageops import pieces_holding

LOCATE_SIZE = 1024  # longest side of the copy the writing is searched on
MARGIN = 0.4  # around the writing, as a share of its line height


def reduced(gray: np.ndarray, longest: int) -> np.ndarray:
    """The picture with its longer side at most `longest` (area-averaged)."""
    scale = longest / max(gray.shape)
    if scale >= 1:
        return gray
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return np.asarray(Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX))


def writing_box(gray: np.ndarray) -> tuple[slice, slice] | None:
    """Where the handwriting is, in `gray`'s pixels, with a margin; None when unsure.

    On a reduced copy: ink relative to the local paper (shadows and a dark table are light
    changes wider than any stroke), pieces holding strong ink; pieces touching the picture's border
    (page edge, table) are dropped; what is left is kept when it is as tall as the tallest
    piece (printed text is smaller than a written number)."""
    from digitpipe.scans.normalise import ScanError, ink_image

    small = reduced(gray, LOCATE_SIZE)
    try:
        ink = ink_image(small)
    except ScanError:
        return None
    peak = float(np.percentile(ink, 99.95))
    # pieces of fainter ink that hold strong ink: a digit whose stroke turns light midway stays
    # one piece (as two short stubs it fell under half the tallest, and was cut off)
    boxes = pieces_holding(ink > 0.25 * peak, ink > 0.5 * peak).boxes
    if not boxes:
        return None
    height, width = ink.shape
    inner = [
        b for b in boxes
        if b[0].start > 0 and b[1].start > 0 and b[0].stop < height and b[1].stop < width
    ]  # fmt: skip
    if not inner:
        return None
    tallest = max(b[0].stop - b[0].start for b in inner)
    writing = [b for b in inner if b[0].stop - b[0].start >= 0.5 * tallest]
    top, bottom = min(b[0].start for b in writing), max(b[0].stop for b in writing)
    left, right = min(b[1].start for b in writing), max(b[1].stop for b in writing)
    margin = MARGIN * tallest
    scale = gray.shape[0] / height
    rows = slice(
        max(0, int((top - margin) * scale)), min(gray.shape[0], int((bottom + margin) * scale) + 1)
    )
    cols = slice(
        max(0, int((left - margin) * scale)), min(gray.shape[1], int((right + margin) * scale) + 1)
    )
    return rows, cols


def crop_to_writing(gray: np.ndarray, min_share: float = 0.25) -> np.ndarray:
    """The part of the picture with the writing, when the writing fills less than `min_share`
    of it; otherwise the whole picture."""
    box = writing_box(gray)
    if box is None:
        return gray
    rows, cols = box
    share = (rows.stop - rows.start) * (cols.stop - cols.start) / gray.size
    return gray[rows, cols] if share < min_share else gray
