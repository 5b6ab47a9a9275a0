"""Printed structure is not handwriting: a row of boxes on a form, with small printed labels,
and the lines of ruled or squared paper.

A form row shows as two long horizontal rules (the boxes' top and bottom) joined by vertical
rules as tall as the band between them. Those rules are removed, and only ink inside the band
is kept, so labels printed above or below the boxes are never read as digits. Paper's lines are
thin, parallel and cross the whole picture; where the ink threshold lets them in, they go. A
single line drawn past the writing (an underline, a line to write on) goes too, and so do the
one or two sides a loosely cut box leaves along the picture's edges."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

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
    runs = imageops.binary_opening(mask[candidates], 1, length)
    rows = candidates[runs.sum(1) >= wide]
    return [(int(group[0]), int(group[-1])) for group in consecutive_runs(rows)]


def consecutive_runs(indices: np.ndarray) -> list[np.ndarray]:
    """Sorted row (column) indices as runs of consecutive ones: one run per line."""
    if len(indices) == 0:
        return []
    return np.split(indices, np.flatnonzero(np.diff(indices) > 1) + 1)


def remove_form_boxes(mask: np.ndarray, faint: np.ndarray) -> np.ndarray:
    """The ink `mask` without a form row's boxes and whatever lies outside them; unchanged when
    the picture is not one row of boxes (two long thin rules, a band at least 10 px tall, box
    sides joining them; a digit's bar touching both sides of its box is a third "rule", thicker
    than the printed ones).
    The rules are looked for in `faint` (a lower threshold): printed boxes are often lighter
    than the writing, and a rule half under the threshold still cuts digits apart."""
    rules = horizontal_rules(faint)
    if len(rules) < 2:
        return mask
    (top_first, top_last), (bottom_first, bottom_last) = rules[0], rules[-1]
    printed_width = max(top_last - top_first, bottom_last - bottom_first) + 1
    if any(last - first + 1 < 2 * printed_width for first, last in rules[1:-1]):
        return mask  # more rules as thin as these: ruled paper, or more than one row of boxes
    band = bottom_first - top_last - 1
    if band < 10:
        return mask
    tall = imageops.components(imageops.binary_opening(faint, int(0.9 * band), 1))
    between = faint[top_last + 1 : bottom_first]
    thickest = 2 * printed_width + 1  # box sides are printed as thin as the rules
    walls = [  # the boxes' sides run from rule to rule, as thin as the rules
        i for i, (rows, columns) in enumerate(tall.boxes, start=1)
        if rows.start <= top_last + 2 and rows.stop >= bottom_first - 1
        and columns.stop - columns.start <= thickest and has_paper_beside(between, columns)
    ]  # fmt: skip
    if len(walls) < 2:  # two rules without box sides are ruled paper, not a form row
        return mask
    printed = np.isin(tall.labels, walls)
    printed[top_first : top_last + 1] |= faint[top_first : top_last + 1]
    printed[bottom_first : bottom_last + 1] |= faint[bottom_first : bottom_last + 1]
    printed = imageops.binary_dilation(printed)
    inside = np.zeros_like(mask)
    inside[top_last + 1 : bottom_first] = True
    kept = mask & ~printed & inside
    # A digit filling its box touches both rules, and a straight part of its stroke then runs
    # from rule to rule as a box's side does; its ink goes on at both sides of it, so it stays.
    kept |= imageops.binary_closing(kept, thickest + 2) & printed & mask & inside
    return kept if kept.any() else mask


def without_lines(mask: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """`mask` less the `lines` and their anti-aliased edges, but with the ink of the strokes
    that cross them: it goes on at both sides, so a closing bridges the line. Unchanged when
    nothing would be left."""
    lines = imageops.binary_dilation(lines)
    without = mask & ~lines
    crossing = imageops.binary_closing(without, 5) & lines & mask
    kept = without | crossing
    return kept if kept.any() else mask


def has_paper_beside(band: np.ndarray, columns: slice, gap: int = 2) -> bool:
    """Paper along most of the band on one side at least of this run from rule to rule?"""
    beside = [columns.start - 1 - gap, columns.stop + gap]  # beyond the picture is paper
    return any(x < 0 or x >= band.shape[1] or band[:, x].mean() < 0.5 for x in beside)


def thin_lines(lines: np.ndarray, thickest: float, faint: np.ndarray) -> np.ndarray:
    """The lines (runs of rows holding line pixels) at most `thickest` rows thick and printed
    (`printed_line`), when there are two or more of them; none otherwise."""
    thin = [
        g for g in consecutive_runs(np.flatnonzero(lines.any(1)))
        if len(g) <= thickest and printed_line(faint, lines, g)
    ]  # fmt: skip
    kept = np.zeros_like(lines)
    if len(thin) >= 2:
        for g in thin:
            kept[g] = lines[g]
    return kept


def printed_line(faint: np.ndarray, lines: np.ndarray, rows: np.ndarray, gap: int = 2) -> bool:
    """Is the straight run in `rows` a printed line: across the whole picture, or with paper on
    both sides along most of it? A straight stretch of a digit's stroke has its own stroke on
    one side all along: the two sides of a 0 filling a tight box crop are as long as 0.8 of it
    and were taken for ruled paper, the 0 read as "12" (10 of 300 UCI 0s in boxes drawn as the
    benchmark's were cut, 3 now; a grid's line with a 1's long stroke beside it keeps paper on
    one side only, but it crosses the picture)."""
    along = lines[rows].any(0)
    if along.sum() >= 0.95 * len(along):
        return True
    sides = [faint[y] if 0 <= y < faint.shape[0] else np.zeros(faint.shape[1], bool)
             for y in (rows[0] - 1 - gap, rows[-1] + 1 + gap)]  # fmt: skip
    return float(np.mean(~sides[0][along] & ~sides[1][along])) >= 0.5


def remove_rules(mask: np.ndarray, faint: np.ndarray, reach: float = 0.8) -> np.ndarray:
    """The ink `mask` without the printed lines of ruled or squared paper that cross the
    writing: thin straight runs of `faint` ink across `reach` of the picture, two or more
    parallel (a digit's bar is one, and shorter; the sides of a huge 0 are thick), printed
    (`printed_line`: the straight sides of a 0 filling its box are not), that the mask holds.
    Where a stroke crosses a line its ink continues on both sides, so those pixels are kept (a
    closing bridges the line's width). Known limit: on ruled paper, a digit's bar
    as thin as the lines and across `reach` of the picture goes with them."""
    height, width = mask.shape
    rows = imageops.ink_per_row(faint) >= reach * width
    columns = imageops.ink_per_column(faint) >= reach * height
    if np.count_nonzero(rows) < 2 and np.count_nonzero(columns) < 2:
        return mask  # no two lines long enough (most pictures: found without an opening)
    thickest = max(4.0, 0.02 * min(height, width))
    across = imageops.binary_opening(faint, 1, max(3, int(reach * width)))
    down = imageops.binary_opening(faint, max(3, int(reach * height)), 1)
    lines = thin_lines(across, thickest, faint) | thin_lines(down.T, thickest, faint.T).T
    # Only lines the ink threshold let in (the mask holds them nearly whole; where they stay
    # under it, the mask holds just the crossings): otherwise there is nothing to remove.
    if not lines.any() or np.count_nonzero(mask & lines) < 0.5 * np.count_nonzero(lines):
        return mask
    return without_lines(mask, lines)


def remove_box_sides_at_edges(
    mask: np.ndarray, faint: np.ndarray, reach: float = 0.8, edge: float = 0.15
) -> np.ndarray:
    """The ink `mask` without what a loosely cut box leaves of its sides: lines along the
    picture's edges (in its outer `edge` share), across `reach` of it, and thinner than the
    writing's strokes (a 7's bar or a 4's stem at a tight crop's edge is as thick as the rest
    of the digit). One or two sides remain where remove_form_boxes and remove_rules, which want
    a whole box or two parallel lines, find nothing. Strokes crossing a side are kept."""
    height, width = mask.shape
    rows = imageops.ink_per_row(faint) >= reach * width
    columns = imageops.ink_per_column(faint) >= reach * height
    band_rows, band_columns = max(1, int(edge * height)), max(1, int(edge * width))
    if not (
        rows[:band_rows].any() or rows[-band_rows:].any()
        or columns[:band_columns].any() or columns[-band_columns:].any()
    ):  # fmt: skip
        return mask  # no long run near an edge (most pictures: found without an opening)
    thinnest_stroke = 0.6 * imageops.stroke_width(mask)
    sides = np.zeros_like(mask)
    for lines, band, found in (
        (imageops.binary_opening(faint, 1, max(3, int(reach * width))), band_rows, sides),
        (imageops.binary_opening(faint, max(3, int(reach * height)), 1).T, band_columns,
         sides.T),
    ):  # fmt: skip
        for group in consecutive_runs(np.flatnonzero(lines.any(1))):
            at_edge = group[-1] < band or group[0] >= len(lines) - band
            if at_edge and len(group) <= thinnest_stroke:
                found[group] |= lines[group]
    if not sides.any():
        return mask
    return without_lines(mask, sides)


def remove_lines_past_writing(mask: np.ndarray) -> np.ndarray:
    """The ink `mask` without a straight line drawn past the writing: an underline, a printed
    line to write on, a strike-through, a notebook's margin line.

    The writing's height (the rest of the ink's) is the unit. A lying line, thin beside it, is
    1.25x as long and passes the rest at both ends, or is 1.5x as long under or over all of
    it, or 2.5x anywhere, or 0.8x under all of it and touching none of it (a 5's bar can stand
    apart, but over the digit). A standing line is 1.5x as tall and passes the rest by a quarter
    at both ends (a 4's stem can pass its bar by a fifth). A digit's own bar or stem ends where
    its other strokes do at one end at least (the bars of 7, 5 and 2, the stem of 1 under its
    flag), and a lone 1 has no other ink to be longer than. Known limit: an underline touching
    a single digit, about as wide as it, stays (a 2's base looks just so). Where a stroke
    crosses a line, its ink goes on at both sides and is kept.
    """
    height, width = mask.shape
    shortest = max(20, min(height, width) // 4)  # a tiny digit's stems are not lines
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0 or max(len(rows), len(columns)) < shortest:
        return mask
    crop = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    ink = mask[crop]
    lines = np.zeros_like(ink)

    @functools.cache
    def ink_pieces() -> imageops.Components:  # found only when a rule needs them
        return imageops.components(ink)

    def apart(near: tuple[slice, slice]) -> bool:
        """Do the pieces of ink the run is part of lie within `near`, touching nothing else?"""
        ids = np.unique(ink_pieces().labels[near][ink[near]])
        return all(
            box[0].start >= near[0].start and box[0].stop <= near[0].stop
            and box[1].start >= near[1].start and box[1].stop <= near[1].stop
            for box in (ink_pieces().boxes[i - 1] for i in ids if i)
        )  # fmt: skip

    for lying, runs, r, c in line_candidates(ink, rows, shortest):
        near = (slice(max(r.start - 1, 0), r.stop + 1), slice(max(c.start - 1, 0), c.stop + 1))
        rest = ink & ~lines if lines.any() else ink
        # the rest's ink per row and column: all of it, less what lies near the run
        per_row, per_column = rest.sum(1), rest.sum(0)
        per_row[near[0]] -= rest[near].sum(1)
        per_column[near[1]] -= rest[near].sum(0)
        if is_line_past_writing(r, c, per_row > 0, per_column > 0, lying,
                                lambda near=near: apart(near)):  # fmt: skip
            lines[r, c] |= runs[r, c]
    if not lines.any():
        return mask
    kept = mask.copy()
    kept[crop] = without_lines(ink, lines)
    return kept


def line_candidates(
    ink: np.ndarray, rows: np.ndarray, shortest: int
) -> list[tuple[bool, np.ndarray, slice, slice]]:
    """The straight runs of `ink` (cropped to itself; `rows`: the picture's rows holding ink)
    that could be lines past the writing, as (lying?, all runs that way, rows, columns).

    Cheap tests first, as most pictures have no line: a lying line touching the writing makes
    the ink about as wide as tall or wider, and one apart from it lies under an empty row; a
    standing one passes the rest at both ends, so the ink's top and bottom rows are its own."""
    ink_height, ink_width = ink.shape
    gaps = np.flatnonzero(np.diff(rows) > 1)
    band_under = rows[-1] - rows[gaps[-1] + 1] + 1 if len(gaps) else ink_height
    lying_possible = ink_width >= 0.9 * ink_height or band_under <= 0.35 * ink_height
    ends = max(1, ink_height // 7)
    thin_ends = max(np.count_nonzero(ink[:ends].any(0)), np.count_nonzero(ink[-ends:].any(0)))
    standing_possible = thin_ends <= 0.25 * ink_height
    standing = max(shortest, int(0.9 * ink_height))  # it is about as tall as all the ink
    candidates = []
    for lying, size in ((True, (1, shortest)), (False, (standing, 1))):
        if not (lying_possible if lying else standing_possible):
            continue
        if (ink.sum(1 if lying else 0) < max(size)).all():
            continue  # no row (column) holds that much ink: no run that long
        runs = imageops.binary_opening(ink, *size)
        for r, c in imageops.components(runs).boxes:
            length, thick = (c.stop - c.start, r.stop - r.start)[:: 1 if lying else -1]
            if thick > (0.44 if lying else 0.24) * length:  # what the rules allow
                continue
            # Ink rows away from a lying run are the rest's: its height is at least theirs.
            above, below = r.start > 1, r.stop + 1 < ink_height
            if lying and above and below and length < 0.8 * ink_height:
                continue
            candidates.append((lying, runs, r, c))
    return candidates


def is_line_past_writing(
    rows: slice,
    columns: slice,
    rest_in_row: np.ndarray,
    rest_in_column: np.ndarray,
    lying: bool,
    apart: Callable[[], bool],
) -> bool:
    """Is the straight run in (rows, columns) a line past the writing (the rest of the ink, in
    these rows and columns; `apart()`: touching none of it), by remove_lines_past_writing's
    rules?"""
    rest_rows, rest_cols = np.flatnonzero(rest_in_row), np.flatnonzero(rest_in_column)
    if len(rest_rows) == 0:
        return False
    tall = rest_rows[-1] - rest_rows[0] + 1  # the writing's height: the unit of every length
    along, rest_along = (columns, rest_cols) if lying else (rows, rest_rows)
    length = along.stop - along.start
    thick = (rows.stop - rows.start) if lying else (columns.stop - columns.start)
    margin = (0.1 if lying else 0.25) * tall
    past_both = along.start < rest_along[0] - margin and along.stop - 1 > rest_along[-1] + margin
    if thick > 0.35 * tall:
        return False
    if not lying:
        return length >= 1.5 * tall and past_both
    under = rows.start >= rest_rows[-1] - margin
    over = rows.stop - 1 <= rest_rows[0] + margin
    return (
        length >= 2.5 * tall
        or (length >= 1.25 * tall and past_both)
        or (length >= 1.5 * tall and (under or over))
        or (length >= 0.8 * tall and under and apart())
    )
