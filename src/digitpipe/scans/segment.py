"""Split the ink of a picture into its digits, left to right."""

from __future__ import annotations

import numpy as np

from digitpipe.scans.imageops import Components, components


def segment(mask: np.ndarray, pieces: Components | None = None) -> list[np.ndarray]:
    """Split an ink mask into digits, left to right.

    Pieces that overlap horizontally belong to one digit (broken strokes, the bar of a 5);
    small pieces within the digits' line join their nearest neighbour, small pieces above or
    below it (printed text, labels) are dropped; a piece much wider than tall is cut at the
    thinnest columns (touching digits). One digit gives a list of one mask. `pieces` are the
    mask's components when the caller has them already.
    """
    pieces = pieces if pieces is not None else components(mask)
    if pieces.count <= 1:
        return [mask]
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
        return [mask]
    digits = [masks[i].copy() for i in big]
    centres = [np.flatnonzero(m.any(0)).mean() for m in digits]
    line = np.flatnonzero(np.any([m.any(1) for m in digits], axis=0))  # rows of the digits' line
    for i, m in enumerate(masks):  # fragments on the line join the nearest digit; others go
        rows = np.flatnonzero(m.any(1))
        if i not in big and line[0] <= rows.mean() <= line[-1]:
            x = np.flatnonzero(m.any(0)).mean()
            digits[int(np.argmin([abs(x - c) for c in centres]))] |= m
    return [part for m in digits for part in split_touching(m)]


def split_touching(mask: np.ndarray) -> list[np.ndarray]:
    """Cut a blob of touching digits at its thinnest columns.

    A handwritten digit is about 0.7 times as wide as it is tall, so a blob 1.15 times wider
    than tall or more is read as round(width / (0.7 * height)) digits; a cut is made only where
    the ink really narrows (a joining stroke), so a wide single digit stays whole.
    """
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    count = int(round(width / (0.7 * height)))
    if width < 1.15 * height or count < 2:
        return [mask]
    profile = mask[:, cols[0] : cols[-1] + 1].sum(0).astype(float)
    narrow = 0.5 * float(np.median(profile[profile > 0]))
    cuts = []
    for k in range(1, count):
        guess = int(k * width / count)
        window = max(2, width // (3 * count))
        lo, hi = max(1, guess - window), min(width - 1, guess + window)
        best = lo + int(np.argmin(profile[lo:hi]))
        if profile[best] <= narrow:
            cuts.append(cols[0] + best)
    edges = [cols[0], *cuts, cols[-1] + 1]
    parts = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        part = np.zeros_like(mask)
        part[:, a:b] = mask[:, a:b]
        if part.any():
            parts.append(part)
    return parts
