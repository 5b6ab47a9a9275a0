"""Split the ink of a picture into its digits, left to right."""

from __future__ import annotations

import numpy as np

from digitpipe.scans.imageops import Components, components

DIGIT_ASPECT = 0.6  # a handwritten digit's width over its height, for counting a blob's digits
WIDEST_DIGIT = 1.0  # a blob this much wider than tall, or more, may be touching digits
PART_HEIGHT = 0.6  # each cut part is this share of the blob's height at least (a bar is no digit)


def segment(mask: np.ndarray, pieces: Components | None = None) -> list[np.ndarray]:
    """Split an ink mask into digits, left to right (segment_blobs, its cuts taken)."""
    return [part for blob in segment_blobs(mask, pieces) for part in blob]


def segment_blobs(mask: np.ndarray, pieces: Components | None = None) -> list[list[np.ndarray]]:
    """Split an ink mask into blobs, left to right, each as the digits it was cut into.

    Pieces that overlap horizontally belong to one digit (broken strokes, the bar of a 5);
    small pieces within the digits' line join their nearest neighbour, small pieces above or
    below it (printed text, labels) are dropped; a blob wider than tall is cut where touching
    digits would meet (split_touching), and its parts are listed together, so that a reader
    can still take it whole. One digit gives [[mask]]. `pieces` are the mask's components
    when the caller has them already.
    """
    pieces = pieces if pieces is not None else components(mask)
    if pieces.count <= 1:
        return [split_touching(mask)]
    labels, boxes = pieces.labels, pieces.boxes
    spans = sorted(
        [[b[1].start, b[1].stop, [i + 1]] for i, b in enumerate(boxes)], key=lambda s: s[0]
    )
    groups: list[list] = []
    for start, stop, ids in spans:  # merge pieces whose columns overlap by a third or more
        if groups:
            last = groups[-1]
            overlap = min(stop, last[1]) - max(start, last[0])
            if overlap > 0.33 * min(stop - start, last[1] - last[0]):
                last[1], last[2] = max(stop, last[1]), last[2] + ids
                continue
        groups.append([start, stop, ids])
    masks = [np.isin(labels, ids) for _, _, ids in groups]
    heights = [np.ptp(np.flatnonzero(m.any(1))) + 1 for m in masks]
    areas = [int(m.sum()) for m in masks]
    big = [
        i
        for i, (h, a) in enumerate(zip(heights, areas, strict=True))
        if h >= 0.45 * max(heights) and a >= 0.1 * max(areas)
    ]
    if len(big) <= 1:
        return [split_touching(mask)]
    digits = [masks[i].copy() for i in big]
    centres = [np.flatnonzero(m.any(0)).mean() for m in digits]
    line = np.flatnonzero(np.any([m.any(1) for m in digits], axis=0))  # rows of the digits' line
    for i, m in enumerate(masks):  # fragments on the line join the nearest digit; others go
        rows = np.flatnonzero(m.any(1))
        if i not in big and line[0] <= rows.mean() <= line[-1]:
            x = np.flatnonzero(m.any(0)).mean()
            digits[int(np.argmin([abs(x - c) for c in centres]))] |= m
    return [split_touching(m) for m in digits]


def split_touching(mask: np.ndarray) -> list[np.ndarray]:
    """Cut a blob of touching digits along the paths that cross the least ink.

    A blob at least WIDEST_DIGIT times wider than tall is read as round(width / (DIGIT_ASPECT x
    height)) digits. Each cut is the path from top to bottom, near where a digit should end,
    that crosses the fewest ink pixels (digits that overlap a little are apart along a slanted
    or winding path, not a column); it is made only where that is few (a joining stroke) and
    every part is most of the blob's height. A wide single digit has such places too (a 0 with
    a thin side): the reader keeps a cut only where the model reads its parts surer than the
    whole (read.taken_cuts).
    """
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    count = int(round(width / (DIGIT_ASPECT * height)))
    if width < WIDEST_DIGIT * height or count < 2:
        return [mask]
    blob = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    profile = blob.sum(0).astype(float)
    narrow = 0.5 * float(np.median(profile[profile > 0]))
    seams = []
    for k in range(1, count):
        guess = int(k * width / count)
        window = max(2, width // (3 * count))
        lo, hi = max(1, guess - window), min(width - 1, guess + window + 1)
        if hi <= lo:
            continue  # a blob a few pixels wide: nowhere to cut
        crossed, seam = cheapest_seam(blob, lo, hi)
        if crossed <= narrow:
            seams.append(seam)
    if not seams:
        return [mask]
    columns = np.arange(width)[None, :]
    bounds = [np.zeros(height, np.int64), *seams, np.full(height, width)]
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # between two seams
        inside = blob & (columns >= a[:, None]) & (columns < b[:, None])
        part_rows = np.flatnonzero(inside.any(1))
        if len(part_rows) == 0 or np.ptp(part_rows) + 1 < PART_HEIGHT * height:
            return [mask]  # a cut-off bar or end, not a digit
        part = np.zeros_like(mask)
        part[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = inside
        parts.append(part)
    return parts


def cheapest_seam(ink: np.ndarray, lo: int, hi: int) -> tuple[int, np.ndarray]:
    """The top-to-bottom path through columns lo..hi-1 of `ink` that crosses the fewest ink
    pixels, moving at most one column per row: (ink pixels crossed, its column in each row)."""
    band = ink[:, lo:hi].astype(np.int32)
    height, width = band.shape
    far = np.iinfo(np.int32).max // 2
    cost = band[0].copy()
    came_from = np.zeros((height, width), dtype=np.int8)
    columns = np.arange(width)
    for r in range(1, height):
        from_left = np.concatenate(([far], cost[:-1]))
        from_right = np.concatenate((cost[1:], [far]))
        options = np.stack((cost, from_left, from_right))  # straight on wins ties
        step = options.argmin(0)
        cost = options[step, columns] + band[r]
        came_from[r] = np.array([0, -1, 1], dtype=np.int8)[step]
    seam = np.empty(height, dtype=np.int64)
    seam[-1] = int(cost.argmin())
    for r in range(height - 1, 0, -1):
        seam[r - 1] = seam[r] + came_from[r, seam[r]]
    return int(cost.min()), seam + lo
