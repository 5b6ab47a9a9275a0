"""The image operations the scan reader is built from, on OpenCV.

Same results as scipy.ndimage's (borders reflected as ndimage's "reflect"; binary operations
with the 4-neighbour cross, outside = 0), 1.3-19x faster on scan-sized pictures (measured by
bench/scans.py's `imageops_speed`), which is what lets predict-scans read hundreds of pictures a
second.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

REFLECT = cv2.BORDER_REFLECT  # "fedcba|abcdef": ndimage's "reflect"
CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))

cv2.setNumThreads(1)  # small pictures: threads cost more than they give (and workers share cores)


def _f32(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image, dtype=np.float32)


def _u8(mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(mask, dtype=bool).view(np.uint8)


def otsu_threshold(values: np.ndarray) -> float:
    """The grey level that best separates two classes (Otsu, 1979), on [0, 1] data; class 0 is
    <= the level."""
    levels = np.clip(values * 255 + 0.5, 0, 255).astype(np.uint8)
    level, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(level) / 255.0


def quantile(values: np.ndarray, q: float) -> float:
    """The value with a share q of `values` at or below it (nearest rank; np.percentile's
    interpolation costs 5x more and changes nothing that matters here)."""
    flat = values.ravel()
    k = min(len(flat) - 1, int(q * (len(flat) - 1) + 0.5))
    return float(np.partition(flat, k)[k])


def mean_filter(image: np.ndarray, size: int) -> np.ndarray:
    """Each pixel the mean of the size x size square around it."""
    return cv2.blur(_f32(image), (size, size), borderType=REFLECT)


def grey_opening(image: np.ndarray, size: int) -> np.ndarray:
    """Bright structures narrower than `size` removed (erosion then dilation, flat square)."""
    kernel = np.ones((size, size), np.uint8)
    return cv2.morphologyEx(_f32(image), cv2.MORPH_OPEN, kernel,
                            borderType=REFLECT)  # fmt: skip


def grey_dilation(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.dilate(_f32(image), np.ones((size, size), np.uint8), borderType=REFLECT)


def grey_erosion(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.erode(_f32(image), np.ones((size, size), np.uint8), borderType=REFLECT)


def binary_erosion(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours are all set (outside the picture counts as unset)."""
    out = cv2.erode(_u8(mask), CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.view(bool)


def ink_per_row(mask: np.ndarray) -> np.ndarray:
    """Set pixels in each row (mask.sum(1), 2-3x faster)."""
    return cv2.reduce(_u8(mask), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()


def ink_per_column(mask: np.ndarray) -> np.ndarray:
    """Set pixels in each column (mask.sum(0), 2-3x faster)."""
    return cv2.reduce(_u8(mask), 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary drawing: twice its area over its outline length."""
    outline = np.count_nonzero(mask & ~binary_erosion(mask))
    return 2.0 * np.count_nonzero(mask) / max(outline, 1)


def binary_dilation(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    out = cv2.dilate(_u8(mask), CROSS, iterations=iterations,
                     borderType=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    return out.view(bool)


def binary_opening(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """What a height x width rectangle of set pixels fits into (long thin ones find lines)."""
    kernel = np.ones((height, width), np.uint8)
    out = cv2.morphologyEx(_u8(mask), cv2.MORPH_OPEN, kernel,
                           borderType=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    return out.view(bool)


def binary_closing(mask: np.ndarray, size: int) -> np.ndarray:
    """Gaps narrower than a size x size square filled (the picture's edge counts as unset)."""
    padded = pad_zeros(mask, size)
    out = cv2.morphologyEx(_u8(padded), cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
    return out.view(bool)[size:-size, size:-size]


def pad_zeros(image: np.ndarray, pad: int) -> np.ndarray:
    """`pad` zero pixels around the picture (numpy.pad's result; 20x faster on a small crop)."""
    if image.dtype == bool:
        return pad_zeros(image.view(np.uint8), pad).view(bool)
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)


def resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The picture (or a mask, as 0/1) at size (width, height), bicubic."""
    return cv2.resize(_f32(image), size, interpolation=cv2.INTER_CUBIC)


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """The picture turned by `degrees` counter-clockwise (bilinear, zeros coming in), on a
    canvas large enough to keep all of it."""
    height, width = image.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    new_w, new_h = int(height * sin + width * cos) + 1, int(height * cos + width * sin) + 1
    turn[0, 2] += new_w / 2 - width / 2
    turn[1, 2] += new_h / 2 - height / 2
    return cv2.warpAffine(_f32(image), turn, (new_w, new_h), flags=cv2.INTER_LINEAR)


def centred_by_mass(box: np.ndarray) -> np.ndarray:
    """The picture moved (bilinear, zeros coming in) so that its centre of mass is its centre,
    as MNIST's digits are."""
    moments = cv2.moments(_f32(box))
    if moments["m00"] <= 0:
        return _f32(box)
    centre_y, centre_x = (box.shape[0] - 1) / 2, (box.shape[1] - 1) / 2
    dx = centre_x - moments["m10"] / moments["m00"]
    dy = centre_y - moments["m01"] / moments["m00"]
    move = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(_f32(box), move, (box.shape[1], box.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip


@dataclass
class Components:
    """The 4-connected pieces of a mask: `labels` (0 = background, pieces 1..count), each
    piece's bounding box (rows, columns) and pixel count."""

    labels: np.ndarray
    count: int
    boxes: list[tuple[slice, slice]]
    areas: np.ndarray

    def keep(self, kept: np.ndarray) -> Components:
        """Only the pieces where `kept[1:]` is true, renumbered in order: what components()
        of the smaller mask gives (dropping pieces never joins others), without labelling
        the picture again."""
        kept = np.asarray(kept, dtype=bool).copy()
        kept[0] = False
        if kept[1:].all():
            return self
        renumbered = (np.cumsum(kept) * kept).astype(self.labels.dtype)
        return Components(
            renumbered[self.labels],
            int(kept.sum()),
            [box for box, k in zip(self.boxes, kept[1:], strict=True) if k],
            self.areas[kept[1:]],
        )


def components(mask: np.ndarray) -> Components:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        _u8(mask), connectivity=4, ltype=cv2.CV_32S
    )
    x, y, w, h, area = (stats[1:, k] for k in range(5))
    boxes = [
        (slice(int(r), int(r + dr)), slice(int(c), int(c + dc)))
        for r, dr, c, dc in zip(y, h, x, w, strict=True)
    ]
    return Components(labels, count - 1, boxes, area)


def pieces_holding(light: np.ndarray, strong: np.ndarray) -> Components:
    """The pieces of `light` that hold `strong` pixels (hysteresis): a stroke that turns lighter
    midway stays one piece; paper grain and stains, holding no strong ink, drop out."""
    pieces = components(light)
    return pieces.keep(np.bincount(pieces.labels[strong], minlength=pieces.count + 1) > 0)
