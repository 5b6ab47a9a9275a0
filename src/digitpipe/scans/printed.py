"""Printed structure is not handwriting: a row of boxes on a form, with small printed labels,
and the lines of ruled or squared paper.

A form row shows as two long horizontal rules (the boxes' top and bottom) joined by vertical
rules as tall as the band between them. Those rules are removed, and only ink inside the band
is kept, so labels printed above or below the boxes are never read as digits. Paper's lines are
thin, parallel and cross the whole picture; where the ink threshold lets them in, they go."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digitpipe.scans import imageops


def horizontal_rules(mask: np.ndarray) -> list[tuple[int, int]]:
    """Rows (first, last) of horizontal rules: rows where straight runs longer than a sixth of
    the width cover 60% of it (a digit's bars never do)."""
    length = max(20, mask.shape[1] // 6)
    wide = mask.shape[1] * 0.6
    # The opening works row by row, so only rows with enough ink to be a rule need it.
    candidates = np.flatnonzero(mask.sum(1) >= wide)
    if len(candidates) == 0:
        return []
    runs = ndimage.binary_opening(mask[candidates], structure=np.ones((1, length), dtype=bool))
    rows = candidates[runs.sum(1) >= wide]
    if len(rows) == 0:
        return []
    groups, start = [], rows[0]
    for a, b in zip(rows[:-1], rows[1:], strict=True):
        if b > a + 1:
            groups.append((start, a))
            start = b
    groups.append((start, rows[-1]))
    return groups


def remove_form_boxes(mask: np.ndarray, faint: np.ndarray) -> np.ndarray:
    """The ink `mask` without a form row's boxes and whatever lies outside them; unchanged when
    the picture is not one row of boxes (exactly two long rules, a band at least 10 px tall,
    box sides joining them).
    The rules are looked for in `faint` (a lower threshold): printed boxes are often lighter
    than the writing, and a rule half under the threshold still cuts digits apart."""
    rules = horizontal_rules(faint)
    if len(rules) != 2:
        return mask
    (top_first, top_last), (bottom_first, bottom_last) = rules
    band = bottom_first - top_last - 1
    if band < 10:
        return mask
    tall = ndimage.binary_opening(faint, structure=np.ones((int(0.9 * band), 1), dtype=bool))
    labels, _ = ndimage.label(tall)
    walls = [  # the boxes' sides run from rule to rule; a digit's stroke does not
        i for i, (rows, _) in enumerate(ndimage.find_objects(labels), start=1)
        if rows.start <= top_last + 2 and rows.stop >= bottom_first - 1
    ]  # fmt: skip
    if len(walls) < 2:  # two rules without box sides are ruled paper, not a form row
        return mask
    printed = np.isin(labels, walls)
    printed[top_first : top_last + 1] |= faint[top_first : top_last + 1]
    printed[bottom_first : bottom_last + 1] |= faint[bottom_first : bottom_last + 1]
    inside = np.zeros_like(mask)
    inside[top_last + 1 : bottom_first] = True
    kept = mask & ~ndimage.binary_dilation(printed) & inside
    return kept if kept.any() else mask


def thin_lines(lines: np.ndarray, thickest: float) -> np.ndarray:
    """The lines (runs of rows holding line pixels) at most `thickest` rows thick, when there
    are two or more of them; none otherwise."""
    rows = np.flatnonzero(lines.any(1))
    if len(rows) == 0:
        return np.zeros_like(lines)
    breaks = np.flatnonzero(np.diff(rows) > 1)
    groups = np.split(rows, breaks + 1)
    thin = [g for g in groups if len(g) <= thickest]
    kept = np.zeros_like(lines)
    if len(thin) >= 2:
        for g in thin:
            kept[g] = lines[g]
    return kept


def remove_rules(mask: np.ndarray, faint: np.ndarray, reach: float = 0.8) -> np.ndarray:
    """The ink `mask` without the printed lines of ruled or squared paper that cross the
    writing: thin straight runs of `faint` ink across `reach` of the picture, two or more
    parallel (a digit's bar is one, and shorter; the sides of a huge 0 are thick), that the
    mask holds. Where a stroke crosses a line its ink continues on both sides, so those pixels
    are kept (a closing bridges the line's width). Known limit: on ruled paper, a digit's bar
    as thin as the lines and across `reach` of the picture goes with them."""
    height, width = mask.shape
    rows, columns = faint.sum(1) >= reach * width, faint.sum(0) >= reach * height
    if np.count_nonzero(rows) < 2 and np.count_nonzero(columns) < 2:
        return mask  # no two lines long enough (most pictures: found without an opening)
    thickest = max(4.0, 0.02 * min(height, width))
    across = imageops.binary_opening(faint, 1, max(3, int(reach * width)))
    down = imageops.binary_opening(faint, max(3, int(reach * height)), 1)
    lines = thin_lines(across, thickest) | thin_lines(down.T, thickest).T
    # Only lines the ink threshold let in (the mask holds them nearly whole; where they stay
    # under it, the mask holds just the crossings): otherwise there is nothing to remove.
    if not lines.any() or np.count_nonzero(mask & lines) < 0.5 * np.count_nonzero(lines):
        return mask
    lines = imageops.binary_dilation(lines)  # the lines' anti-aliased edges
    without = mask & ~lines
    crossing = imageops.binary_closing(without, 5) & lines & mask
    kept = without | crossing
    return kept if kept.any() else mask
