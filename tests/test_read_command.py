"""`make read`: what a trained model reads in your own pictures, printed, with nothing written."""

import shutil
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from digitpipe.config import compose
from digitpipe.scans import read, synthetic
from tests.helpers.project import REPO

READ = [sys.executable, "-m", "digitpipe.commands.read"]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """The sample scans with their labels and a broken file, one loose photo, and a saved model."""
    root = tmp_path_factory.mktemp("read")
    scans = root / "scans"
    shutil.copytree(REPO / "data" / "scans", scans)
    (scans / "broken.png").write_bytes(b"this is not a png")
    photo = root / "photo.jpg"
    shutil.copy(scans / "scan_001.jpg", photo)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")  # the scans settings it reads
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    model.save(root / "model.keras")
    return root


def run_read(*args, cwd):
    return subprocess.run([*READ, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_pictures_and_folders_are_read_as_predict_scans_reads_them_and_nothing_is_written(
    pictures,
):
    before = sorted(p.relative_to(pictures) for p in pictures.rglob("*"))
    done = run_read("scans", "photo.jpg", "--model", "model.keras", cwd=pictures)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    rows = {
        line.split()[0]: line.split()[1:] for line in lines if line.startswith(("scans/", "photo"))
    }

    cfg = compose(REPO / "conf")
    expected, _ = read.read_folder(
        keras.models.load_model(pictures / "model.keras"), pictures / "scans",
        cfg.scans.labels_file, True, cfg.scans.min_confidence, lambda name, case: False,
    )  # fmt: skip
    labels = pd.read_csv(pictures / "scans" / "labels.csv", dtype=str)
    assert len(rows) == len(labels) + 2  # the labelled scans, broken.png, photo.jpg
    assert rows["scans/broken.png"][0] == "ERROR"
    for row in expected[expected["error"] == ""].itertuples():
        reading, confidence, *mark = rows[f"scans/{row.file}"]
        assert reading == row.prediction + ("" if row.accepted else "?")
        assert float(confidence) == pytest.approx(row.confidence, abs=0.005)
        assert mark == (["✓"] if row.correct else ["✗", "label", row.label])
    assert rows["photo.jpg"][0] == rows["scans/scan_001.jpg"][0]
    right = int(expected["correct"].fillna(False).sum())
    unsure = sum(row[0].endswith("?") for row in rows.values())
    assert lines[-1] == (
        f"read: {len(labels) + 2} pictures with model.keras: 1 error, {unsure} unsure "
        f"(confidence under {cfg.scans.min_confidence}), "
        f"{right / len(labels):.1%} right of {len(labels)} labelled"
    )
    assert sorted(p.relative_to(pictures) for p in pictures.rglob("*")) == before


def test_one_digit_reads_a_written_number_as_one_digit(pictures):
    digits = load_digits()
    synthetic.number([digits.images[i] for i in (0, 1, 2)], np.random.default_rng(0)).save(
        pictures / "number.png"
    )
    readings = {}
    for extra in ([], ["--one-digit"]):
        done = run_read("number.png", *extra, "--model", "model.keras", cwd=pictures)
        assert done.returncode == 0, done.stderr
        readings[tuple(extra)] = done.stdout.splitlines()[1].split()[1].rstrip("?")
    # how many digits the untrained model's number has depends on how it reads the parts
    assert len(readings[()]) > 1 and len(readings[("--one-digit",)]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.png"], "error: nope.png: no such picture or folder"),
        (["scans/labels.csv"], "error: scans/labels.csv: not a picture by its name"),
        (["photo.jpg", "--model", "gone.keras"], "error: gone.keras: model file not found"),
    ],
)
def test_a_mistake_is_one_line_before_any_picture_is_read(pictures, args, message):
    done = run_read(*args, cwd=pictures)
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
