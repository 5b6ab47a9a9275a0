"""`make read`: what a trained model reads in your own pictures, printed, with nothing written."""

import shutil
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.datasets import load_digits

from digitpipe.config import load_params
from digitpipe.scans import read, synthetic
from tests.helpers.project import REPO

READ = [sys.executable, "-m", "digitpipe.commands.read"]


def small_model(folder):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    model.save(folder / "model.keras")
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")  # the scans settings it reads
    return model


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """The sample scans with a broken file, one loose photo, and a small (untrained) model. The
    labels give half the pictures the model's own reading and half another digit, and the unsure
    line is its median confidence: every kind of line is printed."""
    root = tmp_path_factory.mktemp("read")
    scans = root / "scans"
    shutil.copytree(REPO / "data" / "scans", scans)
    (scans / "labels.csv").unlink()
    shutil.copy(scans / "scan_001.jpg", root / "photo.jpg")
    model = small_model(root)
    readings, _ = read.read_folder(model, scans, None, True, 0.5, lambda name, case: False)
    (scans / "broken.png").write_bytes(b"this is not a png")
    labels = [p if i % 2 else str((int(p) + 1) % 10) for i, p in enumerate(readings["prediction"])]
    pd.DataFrame({"file": readings["file"], "label": labels}).to_csv(
        scans / "labels.csv", index=False
    )
    params = OmegaConf.load(root / "params.yaml")
    params.scans.min_confidence = float(readings["confidence"].median())
    OmegaConf.save(params, root / "params.yaml")
    return root


def run_read(*args, cwd):
    return subprocess.run([*READ, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def printed_rows(stdout: str) -> dict[str, list[str]]:
    """{file: the rest of its line, split at spaces} for the lines between header and summary
    (notes come before the header)."""
    lines = stdout.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("file "))
    return {line.split()[0]: line.split()[1:] for line in lines[header + 1 : -1]}


def test_pictures_and_folders_are_read_as_predict_scans_reads_them_and_nothing_is_written(
    pictures,
):
    before = sorted(p.relative_to(pictures) for p in pictures.rglob("*"))
    done = run_read("scans", "photo.jpg", "--model", "model.keras", cwd=pictures)
    assert done.returncode == 0, done.stderr
    rows = printed_rows(done.stdout)

    cfg = load_params(pictures / "params.yaml")
    expected, _ = read.read_folder(
        keras.models.load_model(pictures / "model.keras"), pictures / "scans",
        cfg.scans.labels_file, True, cfg.scans.min_confidence, lambda name, case: False,
    )  # fmt: skip
    good = expected[expected["error"] == ""]
    # what this test covers: right and wrong, sure and unsure readings, and an error row
    assert good["correct"].any() and not good["correct"].all()
    assert good["accepted"].any() and not good["accepted"].all()
    assert len(rows) == len(expected) + 1  # and photo.jpg
    assert rows["scans/broken.png"][:3] == ["ERROR", "not", "a"]
    for row in good.itertuples():
        reading, confidence, *mark = rows[f"scans/{row.file}"]
        assert reading == row.prediction + ("" if row.accepted else "?")
        assert float(confidence) == pytest.approx(row.confidence, abs=0.005)
        assert mark == (["✓"] if row.correct else ["✗", "label", row.label])
    assert rows["photo.jpg"] == rows["scans/scan_001.jpg"][:2]  # a picture alone: no label
    unsure = int((~good["accepted"]).sum()) + rows["photo.jpg"][0].endswith("?")
    assert done.stdout.strip().splitlines()[-1] == (
        f"read: {len(expected) + 1} pictures with model.keras: 1 error, {unsure} unsure "
        f"(confidence under {cfg.scans.min_confidence}), "
        f"{good['correct'].mean():.1%} right of {len(good)} labelled"
    )
    assert sorted(p.relative_to(pictures) for p in pictures.rglob("*")) == before


def test_each_picture_is_read_once_however_often_it_is_named(pictures, tmp_path):
    """A folder, a picture in it and a link to the folder: each picture once, by the folder
    (with its label)."""
    shutil.copy(pictures / "params.yaml", tmp_path)
    (tmp_path / "link").symlink_to(pictures / "scans")
    named = [str(pictures / "scans" / "scan_002.bmp"), str(pictures / "scans"), "link"]
    done = run_read(*named, "--model", str(pictures / "model.keras"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = printed_rows(done.stdout)
    pictures_in_folder = len(list((pictures / "scans").glob("scan_*"))) + 1  # and broken.png
    assert len(rows) == pictures_in_folder
    assert all(name.startswith(str(pictures / "scans")) for name in rows)
    assert rows[str(pictures / "scans" / "scan_002.bmp")][-1] in ("✓", *"0123456789")


def test_a_picture_named_alone_keeps_the_label_its_folder_gives_it(pictures):
    """As read in its folder: the same reading and mark, and it counts as labelled."""
    in_folder = printed_rows(run_read("scans", "--model", "model.keras", cwd=pictures).stdout)
    for picture in ("scan_002.bmp", "scan_003.tiff"):
        done = run_read(f"scans/{picture}", "--model", "model.keras", cwd=pictures)
        assert done.returncode == 0, done.stderr
        assert printed_rows(done.stdout)[f"scans/{picture}"] == in_folder[f"scans/{picture}"]
        assert done.stdout.strip().endswith(" right of 1 labelled")
        assert "not in the folder" not in done.stdout


def test_a_folder_inside_a_named_folder_keeps_its_own_labels(pictures, tmp_path):
    """outer/ and outer/inner/ both named: inner's pictures are read once, with the labels of
    inner's labels file, and no label is reported missing."""
    shutil.copy(pictures / "params.yaml", tmp_path)
    shutil.copytree(pictures / "scans", tmp_path / "outer" / "inner")
    (tmp_path / "outer" / "inner" / "broken.png").unlink()
    shutil.copy(pictures / "photo.jpg", tmp_path / "outer")
    model = str(pictures / "model.keras")
    alone = printed_rows(run_read("outer/inner", "--model", model, cwd=tmp_path).stdout)
    done = run_read("outer", "outer/inner", "--model", model, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = printed_rows(done.stdout)
    assert {name: row for name, row in rows.items() if name != "outer/photo.jpg"} == alone
    assert len(rows["outer/photo.jpg"]) == 2  # outer has no labels file: no mark
    assert "not in the folder" not in done.stdout


def test_a_bad_labels_file_beside_a_picture_named_alone_is_a_note(pictures, tmp_path):
    """The labels file was not named: the picture is still read, without a label."""
    shutil.copy(pictures / "params.yaml", tmp_path)
    shutil.copy(pictures / "photo.jpg", tmp_path / "a.jpg")
    (tmp_path / "labels.csv").write_text("file,label\na.jpg,seven\n")
    done = run_read("a.jpg", "--model", str(pictures / "model.keras"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "read: labels.csv: line 2: 'a.jpg': the label is not made of digits 0-9: 'seven': "
        "a.jpg is read without a label\n"
    )
    assert len(printed_rows(done.stdout)["a.jpg"]) == 2


def test_one_digit_reads_a_written_number_as_one_digit(tmp_path):
    small_model(tmp_path)
    digits = load_digits()
    number = synthetic.number([digits.images[i] for i in (0, 1, 2)], np.random.default_rng(0))
    number.save(tmp_path / "number.png")
    readings = {}
    for extra in ([], ["--one-digit"]):
        done = run_read("number.png", *extra, "--model", "model.keras", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        readings[tuple(extra)] = printed_rows(done.stdout)["number.png"][0].rstrip("?")
    # how many digits the untrained model's number has depends on how it reads the parts
    assert len(readings[()]) > 1 and len(readings[("--one-digit",)]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.png"], "nope.png: no such picture or folder"),
        (["scans/labels.csv"], "scans/labels.csv: not a picture by its name"),
        (["empty"], "empty: no images (PNG, JPEG, BMP, TIFF, GIF, WebP, HEIC) in empty"),
        (["photo.jpg", "--model", "gone.keras"], "--model gone.keras: no such file"),
        (["photo.jpg", "--model", "models:/nope@x"], "--model='models:/nope@x': cannot load"),
        (["photo.jpg"], "outputs/train/model.keras: no trained model yet: `make run`"),
        (["photo.jpg", "badlabels"], "badlabels/labels.csv: line 2 has 3 fields, the header 2"),
    ],
    ids=["no-path", "not-a-picture", "empty-folder", "no-model-file", "no-model-uri",
         "no-trained-model", "bad-labels"],
)  # fmt: skip
def test_a_mistake_is_one_line_before_any_picture_is_read(pictures, tmp_path, args, message):
    for name in ("params.yaml", "photo.jpg", "scans/labels.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(pictures / name, tmp_path / name)
    (tmp_path / "empty").mkdir()
    (tmp_path / "badlabels").mkdir()
    shutil.copy(pictures / "photo.jpg", tmp_path / "badlabels" / "a.jpg")
    (tmp_path / "badlabels" / "labels.csv").write_text("file,label\na.jpg,1,x\n")
    done = run_read(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {message}")
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
