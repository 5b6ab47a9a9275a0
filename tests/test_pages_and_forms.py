"""Pictures as people take them: a number on a phone photo of a page, a form row of boxed
digits with printed labels, a tiny faint crop. Built from real handwriting (UCI digits)."""

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from digitpipe.scans import locate, normalise, synthetic

DIGITS = load_digits()


def handwriting(number: str, rng) -> list[np.ndarray]:
    return [DIGITS.images[rng.choice(np.flatnonzero(DIGITS.target == int(d)))] for d in number]


def read(path, split=True) -> list[np.ndarray]:
    picture = normalise.read_digits(path, split=split, thumbnail=False)
    assert not picture.error, picture.error
    return picture.inputs


@pytest.mark.parametrize("number", ["406", "71925"])
def test_a_number_on_a_page_photo_reads_like_a_tight_crop_of_it(tmp_path, number):
    rng = np.random.default_rng(int(number))
    photo = synthetic.page_photo(handwriting(number, rng), rng)
    photo.save(tmp_path / "page.jpg", quality=90, exif=photo.info["exif"])
    full, _ = normalise.load_gray_noted(tmp_path / "page.jpg", normalise.FULL_SIZE)
    assert full.shape == (1512, 2016)  # EXIF orientation applied before anything else

    rows, cols = locate.writing_box(full)
    assert (rows.stop - rows.start) * (cols.stop - cols.start) < 0.05 * full.size
    Image.fromarray((full[rows, cols] * 255).astype(np.uint8)).save(tmp_path / "crop.png")
    from_page, from_crop = read(tmp_path / "page.jpg"), read(tmp_path / "crop.png")
    assert len(from_page) == len(from_crop) == len(number)
    for a, b in zip(from_page, from_crop, strict=True):
        assert np.abs(a - b).mean() < 0.02


def test_a_form_row_reads_one_digit_per_box_and_no_printed_label(tmp_path):
    rng = np.random.default_rng(3)
    number = "8457357134"
    synthetic.form_row(handwriting(number, rng), rng).save(tmp_path / "form.png")
    inputs = read(tmp_path / "form.png")
    assert len(inputs) == len(number)
    # each input is a whole digit (MNIST-like: fitted to ~20 px tall), not a box side or label
    heights = [np.ptp(np.flatnonzero(x.max(1) > 0.2)) + 1 for x in inputs]
    assert min(heights) >= 14, heights


def test_rules_that_are_not_a_form_row_are_left_alone():
    from digitpipe.scans.printed import remove_form_boxes

    zero = np.zeros((100, 100), dtype=bool)
    zero[20:80, 30:70] = True
    zero[24:76, 34:66] = False  # a boxy "0": its bars are long, but not rules across the page
    assert (remove_form_boxes(zero, zero) == zero).all()
    ruled = zero.copy()
    ruled[[10, 90], :] = True  # two lines of ruled paper, no box sides between them
    assert (remove_form_boxes(ruled, ruled) == ruled).all()


@pytest.mark.parametrize("seed", range(6))
def test_a_tiny_faint_crop_stays_one_digit(tmp_path, seed):
    rng = np.random.default_rng(seed)
    synthetic.case_faint_tiny(handwriting(str(seed), rng)[0], rng).save(tmp_path / "tiny.png")
    assert len(read(tmp_path / "tiny.png")) == 1
