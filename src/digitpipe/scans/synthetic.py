"""Render real handwriting as scans: the committed samples, and the pieces the scan benchmark
builds on.

The digits come from scikit-learn's copy of the UCI handwritten digits (43 writers, not MNIST),
so the samples test transfer to handwriting the model never saw. Each is rendered with the
artefacts of a cheap scan or phone photo: offset, size, stroke width, blur, noise, uneven light,
and a few with light ink on a dark board.
Also the scan benchmark's hard cases (`CASES`, `generate`): shadow, ruled and grid paper,
marker and pencil, chalk on a board, tiny and huge digits, and written numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from sklearn.datasets import load_digits

from digitpipe.errors import UserError
from digitpipe.scans import labels as labels_csv
from digitpipe.scans.pen import strokes

Rng = np.random.Generator

FORMATS = ("png", "jpg", "bmp", "tiff")


def place(ink: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The drawing at a random spot of an empty page."""
    canvas = np.zeros((height, width), dtype=np.float32)
    top = int(rng.integers(0, height - ink.shape[0] + 1))
    left = int(rng.integers(0, width - ink.shape[1] + 1))
    canvas[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return canvas


def on_paper(
    canvas: np.ndarray,
    rng: np.random.Generator,
    inverted: bool = False,
    shadow: float | None = None,
    pen_tone: tuple[float, float] = (0.05, 0.3),
    lines: np.ndarray | None = None,
) -> Image.Image:
    """Ink (1) on paper, lit unevenly, with paper grain, sensor noise and a little blur."""
    height, width = canvas.shape
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    strength = rng.uniform(0.0, 0.35) if shadow is None else shadow
    light = 1.0 - strength * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy + 1) / 2
    if inverted:  # chalk on a dark board
        paper, pen = rng.uniform(0.1, 0.25), rng.uniform(0.8, 0.95)
    else:
        paper, pen = rng.uniform(0.8, 0.97), rng.uniform(*pen_tone)
    page = np.full_like(canvas, paper)
    if lines is not None:  # printed rules or grid, fainter than the ink
        page = page - (paper - rng.uniform(0.45, 0.7)) * lines
    picture = (page + (pen - page) * canvas) * light
    picture += rng.normal(0, rng.uniform(0.01, 0.04), picture.shape)
    image = Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.3)))


def render(digit8: np.ndarray, rng: np.random.Generator, inverted: bool) -> Image.Image:
    """One 8x8 UCI digit as a scanned picture (the committed samples)."""
    size = int(rng.integers(40, 110))
    pen = int(rng.choice([2, -1])) if rng.random() < 0.4 else 0
    ink = strokes(digit8, size, rng, pen)
    canvas = place(ink, int(size * rng.uniform(1.3, 2.0)), int(size * rng.uniform(1.3, 2.4)), rng)
    return on_paper(canvas, rng, inverted=inverted)


def sample_name(number: int) -> str:
    return f"scan_{number:03d}.{FORMATS[number % len(FORMATS)]}"


def others_labels(path: Path, samples: set[str]) -> pd.DataFrame:
    """The rows of an existing labels.csv for pictures that are not the samples: the user's
    own, every column kept, when the samples are written again (read before anything is
    written, by the reader predict-scans uses)."""
    if not path.is_file():
        return pd.DataFrame()
    try:
        header, body = labels_csv.rows(path)
    except UserError as exc:
        raise UserError(f"{exc} (make scans keeps its rows: fix it or move it away)") from None
    where = header.index("file")
    kept = [fields for _, fields in body if labels_csv.file_name(fields[where]) not in samples]
    return pd.DataFrame(kept, columns=header)


def make(out: Path, per_digit: int = 3, seed: int = 2026) -> pd.DataFrame:
    """Write per_digit scans of each digit and their rows of labels.csv, keeping the rows of
    other pictures there; returns the samples' labels table."""
    samples = {sample_name(n) for n in range(1, 10 * per_digit + 1)}
    others = others_labels(out / "labels.csv", samples)
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
                tinted = np.stack([gray * 0.85, gray * 0.9, np.minimum(gray * 1.2, 1)], -1)
                image = Image.fromarray((tinted * 255).astype(np.uint8))
            name = sample_name(number)
            image.save(out / name)
            rows.append({"file": name, "label": str(digit)})
    labels = pd.DataFrame(rows)
    merged = pd.concat([labels, others], ignore_index=True).fillna("")
    merged.to_csv(out / "labels.csv", index=False)
    labels.attrs["kept"] = len(others)
    return labels


# --- the scan benchmark's cases ------------------------------------------------------------


def ruled(height: int, width: int, rng: Rng, grid: bool) -> np.ndarray:
    """Printed lines every few millimetres: 1 on the lines, 0 elsewhere."""
    lines = np.zeros((height, width), dtype=np.float32)
    gap = int(rng.integers(18, 30))
    lines[int(rng.integers(0, gap)) :: gap, :] = 1
    if grid:
        lines[:, int(rng.integers(0, gap)) :: gap] = 1
    return lines


def single(
    digit8: np.ndarray, rng: Rng, size: int, page: tuple[int, int], pen: int = 0, **paper
) -> Image.Image:
    ink = strokes(digit8, size, rng, pen)
    return on_paper(place(ink, *page, rng), rng, **paper)


def case_clean(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 60, (110, 100))


def case_shadow(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 70, (160, 140), shadow=rng.uniform(0.5, 0.7))


def case_lined(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 70, (130, 120), lines=ruled(130, 120, rng, grid=False))


def case_grid(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 70, (130, 120), lines=ruled(130, 120, rng, grid=True))


def case_thick(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 70, (120, 110), pen=4)


def case_thin(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 90, (140, 130), pen=-2, pen_tone=(0.35, 0.55))


def case_inverted(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 60, (110, 100), inverted=True)


def case_tiny(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 14, (220, 200))


def case_huge(d: np.ndarray, rng: Rng) -> Image.Image:
    return single(d, rng, 1400, (1600, 1500))


CASES: dict[str, Callable] = {
    "clean": case_clean,
    "shadow": case_shadow,
    "lined": case_lined,
    "grid": case_grid,
    "thick": case_thick,
    "thin": case_thin,
    "inverted": case_inverted,
    "tiny": case_tiny,
    "huge": case_huge,
}


def number(digits8: list, rng: Rng) -> Image.Image:
    """A written number: digits side by side with uneven gaps (sometimes touching)."""
    row = np.pad(written_row(digits8, rng, 60, (-2, 14)), ((0, 0), (20, 20)))
    return on_paper(place(row, row.shape[0] + 50, row.shape[1] + 30, rng), rng)


def written_row(digits8: list, rng: Rng, size: int, gaps: tuple[int, int]) -> np.ndarray:
    """Digits side by side as one strip of ink (1 = ink), tight to their columns."""
    crops = []
    for d in digits8:
        ink = strokes(d, size, rng)
        columns = np.flatnonzero(ink.max(0) > 0.3)
        crops.append(ink[:, columns[0] : columns[-1] + 1])
    steps = [int(rng.integers(*gaps)) for _ in crops]
    row = np.zeros((size, sum(c.shape[1] for c in crops) + sum(max(g, 0) for g in steps)), "f4")
    x = 0
    for crop, gap in zip(crops, steps, strict=True):
        row[:, x : x + crop.shape[1]] = np.maximum(row[:, x : x + crop.shape[1]], crop)
        x += crop.shape[1] + gap
    return row[:, :x]


def page_photo(digits8: list, rng: Rng) -> Image.Image:
    """A phone photo of a page: a written number well under a tenth of the frame, faint printed
    text, a shadow, the page edge and a dark table corner; stored sideways with an EXIF
    orientation, as phones do."""
    height, width = 1512, 2016
    size = int(rng.integers(70, 110))
    row = written_row(digits8, rng, size, (4, 16))
    text = np.zeros((height, width), dtype=np.float32)
    for top in range(int(rng.integers(60, 120)), height - 60, int(rng.integers(55, 75))):
        x = int(rng.integers(80, 200))
        while x < width - 300:  # printed words: small dark runs, faint (showing through)
            word = int(rng.integers(30, 140))
            text[top : top + 14, x : x + word] = rng.uniform(0.15, 0.3)
            x += word + int(rng.integers(12, 30))
    canvas = np.zeros((height, width), dtype=np.float32)
    top = int(rng.integers(height // 3, 2 * height // 3 - size))
    left = int(rng.integers(width // 4, 3 * width // 4 - row.shape[1]))
    canvas[top : top + size, left : left + row.shape[1]] = row
    text[top - 40 : top + size + 40, left - 60 : left + row.shape[1] + 60] = 0
    picture = np.asarray(on_paper(np.maximum(canvas, text), rng, shadow=rng.uniform(0.3, 0.5)))
    picture = picture.astype(np.float32) / 255
    yy, xx = np.mgrid[0:height, 0:width]
    corner = int(rng.integers(0, 4))  # the table beyond the page edge, in one corner
    fx, fy = (xx, yy) if corner % 2 == 0 else (width - xx, yy)
    fy = fy if corner < 2 else height - yy
    table = fx / width + fy / height < rng.uniform(0.18, 0.3)
    picture[table] = rng.uniform(0.08, 0.2) + rng.normal(0, 0.02, int(table.sum()))
    image = Image.fromarray((np.clip(picture, 0, 1) * 255).astype(np.uint8))
    sideways = image.transpose(Image.Transpose.ROTATE_90)  # pixels as the sensor saw them
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    sideways.info["exif"] = exif.tobytes()
    return sideways


def form_row(digits8: list, rng: Rng) -> Image.Image:
    """A form row: each handwritten digit inside a printed box, a small printed label above."""
    from PIL import ImageDraw, ImageFont

    box, count = int(rng.integers(46, 60)), len(digits8)
    height, width = box + 70, box * count + 60
    canvas = np.zeros((height, width), dtype=np.float32)
    lines = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(lines)
    font = ImageFont.load_default(size=max(8, box // 5))
    top = 45
    for i, d in enumerate(digits8):
        left = 30 + i * box
        draw.rectangle([left, top, left + box, top + box], outline=255, width=2)
        draw.text((left + 4, top - box // 5 - 8), f"{i + 1}", fill=255, font=font)
        size = int(box * rng.uniform(0.65, 0.85))
        ink = strokes(d, size, rng)
        y = top + (box - size) // 2 + int(rng.integers(-3, 4))
        x = left + (box - size) // 2 + int(rng.integers(-3, 4))
        canvas[y : y + size, x : x + size] = np.maximum(canvas[y : y + size, x : x + size], ink)
    printed = np.asarray(lines, dtype=np.float32) / 255
    return on_paper(canvas, rng, lines=printed)


def case_faint_tiny(d: np.ndarray, rng: Rng) -> Image.Image:
    """A 32x32 crop of a thin grey stroke: thresholded naively it breaks into pieces."""
    ink = strokes(d, int(rng.integers(22, 27)), rng, pen=-1)
    return on_paper(place(ink, 32, 32, rng), rng, pen_tone=(0.55, 0.7))


CASES["faint_tiny"] = case_faint_tiny


def boxed(digits8: list, rng: Rng) -> Image.Image:
    """One box cut from a form: the digit fills most of it and may touch its sides, the box's
    printed lines at (or near) the crop's edges."""
    size = int(rng.integers(50, 70))
    ink = strokes(digits8[0], size, rng)
    margin = int(rng.integers(1, 7))
    canvas = np.pad(ink, margin)
    lines = np.zeros_like(canvas)
    lines[:2] = lines[-2:] = lines[:, :2] = lines[:, -2:] = 1
    edge = int(rng.integers(0, 6))  # paper left around the box by the cut
    return on_paper(np.pad(canvas, edge), rng, lines=np.pad(lines, edge))


def underlined(digits8: list, rng: Rng) -> Image.Image:
    """A written number underlined in the same ink, touching its digits or not, the line a
    little shorter or longer than the number."""
    row = written_row(digits8, rng, 60, (2, 14))
    height, width = row.shape
    canvas = np.zeros((height + 20, width + 60), np.float32)
    canvas[:height, 30 : 30 + width] = row
    top = height + int(rng.integers(-2, 9))
    left, right = 30 - int(rng.integers(-5, 26)), 30 + width + int(rng.integers(-5, 26))
    canvas[top : top + 3, left:right] = 1
    return on_paper(place(canvas, canvas.shape[0] + 40, canvas.shape[1] + 20, rng), rng)


def tilted(digits8: list, rng: Rng) -> Image.Image:
    """A written number photographed with the phone held askew: turned by 4 to 15 degrees."""
    picture = number(digits8, rng)
    angle = float(rng.uniform(4, 15) * rng.choice([-1, 1]))
    paper = int(np.median(np.asarray(picture)))
    return picture.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=paper)


NUMBER_CASES: dict[str, Callable] = {  # (digits as 8x8 pictures, rng) -> picture
    "multi": number,
    "page_photo": page_photo,
    "form_row": form_row,
    "boxed": boxed,  # one digit: after the others, so that their pictures stay as they were
    "underlined": underlined,
    "tilted": tilted,
}
NUMBER_LENGTHS = {  # digits per picture: numpy's (low, high), high left out
    "multi": (2, 5), "page_photo": (3, 6), "form_row": (10, 11),
    "boxed": (1, 2), "underlined": (2, 5), "tilted": (3, 6),
}  # fmt: skip


def generate(out: Path, per_case: int, seed: int) -> pd.DataFrame:
    """Write the benchmark pictures and labels.csv (file,label,case)."""
    rng = np.random.default_rng(seed)
    digits = load_digits()
    out.mkdir(parents=True, exist_ok=True)
    rows = []

    def pick(label: int) -> np.ndarray:
        return digits.images[rng.choice(np.flatnonzero(digits.target == label))]

    for case, draw in CASES.items():
        for k in range(per_case):
            name = f"{case}_{k:02d}.png"
            draw(pick(k % 10), rng).save(out / name)
            rows.append({"file": name, "label": str(k % 10), "case": case})
    for case, draw in NUMBER_CASES.items():
        for k in range(per_case):
            labels = rng.integers(0, 10, size=int(rng.integers(*NUMBER_LENGTHS[case])))
            picture = draw([pick(d) for d in labels], rng)
            name = f"{case}_{k:02d}." + ("jpg" if case == "page_photo" else "png")
            picture.save(out / name, **({"quality": 90} if name.endswith(".jpg") else {}),
                         exif=picture.info.get("exif", b""))  # fmt: skip
            rows.append({"file": name, "label": "".join(map(str, labels)), "case": case})
    table = pd.DataFrame(rows)
    table.to_csv(out / "labels.csv", index=False)
    return table
