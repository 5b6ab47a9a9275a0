"""Scan normalisation: each step turns a picture into an MNIST-style 28x28 input."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from digitpipe.scans import normalise
from digitpipe.scans.imageops import otsu_threshold
from digitpipe.scans.segment import segment


def draw_seven(size=(160, 120), box=(10, 15, 50, 75), ink=20, paper=235, width=6):
    """A '7' in dark ink on light paper, in the top-left corner of a wide picture."""
    image = Image.new("L", size, paper)
    pen = ImageDraw.Draw(image)
    left, top, right, bottom = box
    pen.line([(left, top), (right, top), (left + 10, bottom)], fill=ink, width=width)
    return image


def as_gray(image):
    return normalise.to_gray(image)


def test_off_centre_dark_on_light_comes_out_centred_and_light_on_dark():
    result = normalise.normalize(as_gray(draw_seven()))
    assert result.shape == (28, 28)
    assert result.dtype == np.float32
    cy, cx = ndimage.center_of_mass(result)
    assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0
    # light ink on black: the sides are background (zero), the digit is bright
    assert result[:, :3].max() < 0.05 and result[:, -3:].max() < 0.05
    assert result[14, :].max() > 0.5
    assert result.max() == pytest.approx(1.0)


def test_digit_fits_twenty_pixels_keeping_aspect():
    result = normalise.normalize(as_gray(draw_seven(box=(10, 10, 40, 100))))  # tall 7
    rows = np.flatnonzero(result.max(1) > 0.1)
    cols = np.flatnonzero(result.max(0) > 0.1)
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert 18 <= height <= 22
    assert width < height * 0.6


def test_light_ink_on_dark_board_gives_the_same_digit():
    dark = normalise.normalize(as_gray(draw_seven()))
    chalk = normalise.normalize(as_gray(draw_seven(ink=230, paper=25)))
    assert np.abs(dark - chalk).mean() < 0.05


def test_uneven_lighting_is_removed():
    gray = as_gray(draw_seven()).copy()
    ramp = np.linspace(1.0, 0.45, gray.shape[1])[None, :]  # a shadow across the page
    plain = normalise.normalize(as_gray(draw_seven()))
    shaded = normalise.normalize(gray * ramp)
    assert np.abs(plain - shaded).mean() < 0.06


def test_specks_and_ruled_line_are_ignored():
    image = draw_seven()
    pen = ImageDraw.Draw(image)
    pen.line([(0, 100), (159, 100)], fill=60, width=2)  # ruled line across the page
    pen.point([(140, 20), (150, 50)], fill=0)  # dust
    clean = normalise.normalize(as_gray(draw_seven()))
    assert np.abs(normalise.normalize(as_gray(image)) - clean).mean() < 0.05


def test_blank_page_is_no_digit():
    with pytest.raises(normalise.ScanError, match="no digit found"):
        normalise.normalize(np.full((80, 60), 0.9, dtype=np.float32))


@pytest.mark.parametrize("mode", ["RGB", "CMYK", "P", "I;16"])
def test_image_modes_load_as_grayscale(tmp_path, mode):
    base = draw_seven()
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base, dtype=np.uint16) * 257)
    else:
        image = base.convert(mode)
    path = tmp_path / ("seven.tif" if mode in ("CMYK", "I;16") else "seven.png")
    image.save(path)
    gray = normalise.load_gray(path)
    assert gray.shape == (120, 160)
    assert gray.min() < 0.2 and gray.max() > 0.8
    assert normalise.normalize(gray).max() == pytest.approx(1.0)


def test_transparent_png_gets_paper_behind_the_ink(tmp_path):
    alpha = np.asarray(draw_seven(ink=255, paper=0))  # opaque where the ink is
    rgba = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    rgba[..., 3] = alpha  # black ink, transparent elsewhere (RGB all zero)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "seven.png")
    gray = normalise.load_gray(tmp_path / "seven.png")
    assert np.median(gray) > 0.9  # paper is white, not the black of transparent pixels
    reference = normalise.normalize(as_gray(draw_seven(ink=0, paper=255)))
    assert np.abs(normalise.normalize(gray) - reference).mean() < 0.05


def test_exif_orientation_is_honoured(tmp_path):
    image = draw_seven()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    image.save(tmp_path / "seven.jpg", exif=exif)
    assert normalise.load_gray(tmp_path / "seven.jpg").shape == (160, 120)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"not an image at all", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a readable image"),
    ],
)
def test_unreadable_files_raise_scan_error(tmp_path, content, reason):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(normalise.ScanError, match=reason):
        normalise.load_gray(path)


def test_large_picture_is_scaled_down_on_load(tmp_path):
    draw_seven(size=(4000, 3000), box=(500, 500, 1500, 2000), width=120).save(tmp_path / "big.png")
    gray = normalise.load_gray(tmp_path / "big.png")
    assert max(gray.shape) == normalise.WORK_SIZE


def test_naive_recipe_only_resizes_and_inverts():
    naive = normalise.naive(as_gray(draw_seven()))
    assert naive.shape == (28, 28)
    assert naive.min() > 0.05  # the paper stays grey instead of black
    ink_columns = np.flatnonzero(naive.max(0) > 0.5)
    assert ink_columns.max() < 12  # the digit stays off-centre: what the real normalisation fixes


def draw_number(digits: str, size=60, gap=18):
    """Digits written side by side in a font-free way: simple strokes per digit."""
    shapes = {
        "1": [[(0.5, 0.0), (0.5, 1.0)]],
        "7": [[(0.0, 0.0), (1.0, 0.0), (0.3, 1.0)]],
        "0": [[(0.1, 0.0), (0.9, 0.0), (0.9, 1.0), (0.1, 1.0), (0.1, 0.0)]],
        "4": [[(0.7, 1.0), (0.7, 0.0), (0.0, 0.7), (1.0, 0.7)]],
    }
    width = 0.6 * size
    step = width + gap
    image = Image.new("L", (int(30 + step * len(digits) + width), size + 40), 240)
    pen = ImageDraw.Draw(image)
    for k, digit in enumerate(digits):
        left = 15 + k * step
        for stroke in shapes[digit]:
            points = [(left + x * width, 20 + y * size) for x, y in stroke]
            pen.line(points, fill=20, width=6)
    return image


def test_a_written_number_is_split_left_to_right():
    parts = normalise.normalize_digits(as_gray(draw_number("1704")))
    assert len(parts) == 4
    singles = [normalise.normalize(as_gray(draw_number(d))) for d in "1704"]
    for part, single in zip(parts, singles, strict=True):
        assert np.abs(part - single).mean() < 0.06


def test_digits_joined_by_a_ligature_are_cut_apart():
    image = draw_number("17", gap=14)
    ImageDraw.Draw(image).line([(30, 60), (70, 60)], fill=20, width=3)  # a joining stroke
    assert len(normalise.normalize_digits(as_gray(image))) == 2
    parts = segment(normalise.ink_mask(normalise.ink_image(as_gray(image))))
    cut = np.flatnonzero(parts[1].any(0))[0]
    assert 36 <= cut <= 66  # between the 1's stroke (x 30..36) and the 7's left end (x 66)


def test_single_digit_stays_single_even_when_broken():
    image = draw_seven()
    ImageDraw.Draw(image).line([(28, 40), (34, 40)], fill=235, width=4)  # a gap in the stroke
    assert len(normalise.normalize_digits(as_gray(image))) == 1
    assert len(normalise.normalize_digits(as_gray(draw_number("1704")), split=False)) == 1


def faint_ring(fading: int) -> np.ndarray:
    """A pencil-grey 0 on grainy paper whose stroke turns lighter (`fading`) on both sides."""
    ring = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(ring).ellipse([16, 10, 48, 54], outline=255, width=3)
    on_ring = np.asarray(ring) > 0
    picture = np.where(on_ring, 185.0, 230.0)  # ink 45 grey levels darker than paper: faint
    picture[29:36][on_ring[29:36]] = fading  # where the pencil pressed less
    picture += np.random.default_rng(0).normal(0, 2.0, picture.shape)
    return np.clip(picture, 0, 255).astype(np.float32) / 255


FADED = 215  # the faded part sits at 0.8x the threshold: under it, within FAINT_STROKE of it


def test_a_faint_stroke_that_fades_midway_stays_one_piece(monkeypatch):
    ink = normalise.ink_image(faint_ring(fading=FADED))
    assert normalise.ink_pieces(ink).count == 1
    assert normalise.ink_pieces(normalise.ink_image(faint_ring(fading=230))).count == 2  # a gap
    monkeypatch.setattr(normalise, "FAINT_INK", 0.0)  # without the rule for faint ink
    assert normalise.ink_pieces(ink).count == 2


@pytest.mark.parametrize("pen", [3, 18])
def test_stroke_width_comes_out_mnist_like(pen):
    """A hairline and a fat marker both end up with a stroke near MNIST's."""
    result = normalise.normalize(
        as_gray(draw_seven(box=(20, 20, 120, 170), size=(200, 200), width=pen))
    )
    width = normalise.stroke_width(result > 0.5)
    assert 1.5 < width < 4.0, width


def test_a_marker_digit_filling_the_frame_stays_solid():
    """The paper estimate must not take a fat stroke for paper: its middle would be cut out and
    a "1" would come out as the outline of a "0"."""
    image = Image.new("L", (110, 120), 235)
    ImageDraw.Draw(image).rectangle([40, 10, 70, 110], fill=20)  # a "1", 30 px wide
    ink = normalise.ink_image(as_gray(image))
    assert ink[60, 55] > 0.8 * ink[60, 42]  # the stroke's middle as inked as its edge


@pytest.mark.parametrize("width", [4, 6, 9, 14])
def test_a_stroke_is_evened_towards_mnist_width_never_past_it(width):
    scale = normalise.MNIST_STROKE / 2.4  # the wanted width is 2.4 px in this picture
    mask = np.zeros((240, 60), dtype=bool)
    mask[20:220, 20 : 20 + width] = True  # a long bar: its measured width is about `width`
    evened = normalise.even_stroke(mask.astype(np.float32), mask, scale) > 0.5
    after = int(evened[120].sum())  # the bar's width in the middle row
    assert 2.4 <= after <= width
    assert after < width or width < 1.6 * 2.4 + 1  # thick bars are thinned


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    draw_seven().save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # any picture over 2x this is a bomb
    with pytest.raises(normalise.ScanError, match="decompression-bomb"):
        normalise.load_gray(tmp_path / "bomb.png")


def test_truncated_file_is_unreadable(tmp_path):
    draw_seven().save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(normalise.ScanError, match="not a readable image"):
        normalise.load_gray(tmp_path / "cut.png")


def test_keeping_some_pieces_labels_like_labelling_the_smaller_mask():
    """segment reuses ink_mask's pieces instead of labelling the picture twice."""
    from digitpipe.scans.imageops import components

    rng = np.random.default_rng(3)
    mask = ndimage.binary_opening(rng.random((60, 90)) > 0.55)
    pieces = components(mask)
    kept = np.r_[False, pieces.areas > np.median(pieces.areas)]
    smaller = components(kept[pieces.labels])
    reused = pieces.keep(kept)
    assert pieces.count > reused.count > 1
    assert np.array_equal(reused.labels, smaller.labels)
    assert reused.boxes == smaller.boxes
    assert np.array_equal(reused.areas, smaller.areas)


def test_the_centre_of_mass_moves_to_the_centre_as_ndimage_would_move_it():
    from digitpipe.scans.imageops import centred_by_mass

    box = np.zeros((28, 28), np.float32)
    box[3:17, 12:25] = np.random.default_rng(4).random((14, 13))
    cy, cx = ndimage.center_of_mass(box)
    expected = ndimage.shift(box, (13.5 - cy, 13.5 - cx), order=1, mode="constant", cval=0.0)
    assert np.allclose(centred_by_mass(box), expected, atol=1e-5)
    assert np.allclose(ndimage.center_of_mass(centred_by_mass(box)), (13.5, 13.5), atol=0.3)


def draw_closed_four(scale: float, width: int) -> Image.Image:
    """A 4 with a closed top, dark on light, in a 100x100 picture times `scale`."""
    at = [(round(x * scale), round(y * scale)) for x, y in ((60, 80), (60, 20), (30, 60), (75, 60))]
    image = Image.new("L", (round(100 * scale), round(100 * scale)), 235)
    ImageDraw.Draw(image).line(at, fill=20, width=width)
    return image


def test_a_tiny_blurred_digit_comes_out_like_the_same_digit_written_large():
    """A 25-px digit, blurred as a cheap scan blurs it, is enlarged before its stroke is evened:
    its input then matches the large one's (eroding it at its own size took whole pixels)."""
    large = normalise.normalize(as_gray(draw_closed_four(1.0, 7))) > 0.5
    blurred = draw_closed_four(0.25, 2).filter(ImageFilter.GaussianBlur(1.0))
    tiny = normalise.normalize(as_gray(blurred)) > 0.5
    assert (large & tiny).sum() / (large | tiny).sum() > 0.55  # 0.38 before the enlargement


@pytest.mark.parametrize("ink, paper", [(0.45, (0.95, 0.7)), (0.55, (0.05, 0.3))])
def test_a_tiny_digit_on_unevenly_lit_paper_keeps_its_ink_polarity(ink, paper):
    """On a page lit unevenly, Otsu's split cuts the paper's shading near half and half, so it
    cannot say which side the ink is: dark pencil or light chalk, the digit must be the ink."""
    top, bottom = paper
    shade = np.linspace(0, 1, 220)[:, None] ** 0.7 * np.ones((1, 200))
    page = top + (bottom - top) * shade
    digit = np.asarray(draw_closed_four(0.25, 2), dtype=np.float32) < 0.5 * 255
    page[100:125, 90:115][digit] = ink
    page += np.random.default_rng(0).normal(0, 0.01, page.shape)
    gray = np.clip(page, 0, 1).astype(np.float32)
    dark_share = np.mean(gray <= otsu_threshold(gray))
    assert abs(dark_share - 0.5) < normalise.AMBIGUOUS_SPLIT  # the case this guards
    peak_row, peak_col = np.unravel_index(normalise.ink_image(gray).argmax(), gray.shape)
    assert 100 <= peak_row < 125 and 90 <= peak_col < 115


@pytest.mark.parametrize("seed", [353, 389])
def test_a_faint_digit_in_a_noisy_unevenly_lit_crop_is_dark_ink(seed):
    """The scan benchmark's faint 32x32 crops where Otsu splits the noise half and half: the
    grey levels' skew, not the side farther from the paper's median (these two), finds the ink."""
    from sklearn.datasets import load_digits

    from digitpipe.scans import synthetic

    digit = load_digits().images[seed % 50]
    picture = synthetic.case_faint_tiny(digit, np.random.default_rng(seed))
    gray = normalise.working_picture(np.asarray(picture, np.float32) / 255)
    dark_share = np.mean(gray <= otsu_threshold(gray))
    assert abs(dark_share - 0.5) <= normalise.AMBIGUOUS_SPLIT
    assert normalise.ink_is_dark(gray)


def test_a_very_large_picture_is_read_without_pillows_raw_warning(tmp_path, monkeypatch):
    """Between Pillow's two decompression-bomb limits a picture is read, quietly (its warning
    was two raw lines of Python on stderr); past the upper one it is an error row."""
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 is past it, under twice it
    Image.new("L", (40, 40), 255).save(tmp_path / "big.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gray, note = normalise.load_gray_noted(tmp_path / "big.png")
    assert gray.shape == (40, 40) and note == ""
    Image.new("L", (50, 50), 255).save(tmp_path / "bomb.png")
    with pytest.raises(normalise.ScanError, match="too large to decode safely"):
        normalise.load_gray_noted(tmp_path / "bomb.png")
