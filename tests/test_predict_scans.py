"""predict-scans on a folder: every good image predicted, every bad one an error row."""

import dataclasses
import shutil
import subprocess
import sys

import keras
import pandas as pd
import pytest

from digitpipe.config import compose
from digitpipe.errors import UserError
from digitpipe.paths import Paths
from digitpipe.scans import read
from digitpipe.scans.labels import read_labels
from digitpipe.stages import predict_scans
from tests.helpers.project import REPO


@pytest.fixture
def workspace(tmp_path):
    """A workspace with the sample scans, one broken file, and a small saved model."""
    scans = tmp_path / "scans"
    shutil.copytree(REPO / "data" / "scans", scans)
    (scans / "broken.png").write_bytes(b"this is not a png")
    (scans / "empty.jpg").write_bytes(b"")
    (scans / "notes.txt").write_text("not an image extension: ignored")
    with (scans / "labels.csv").open("a") as labels:
        labels.write("gone.png,5\n")  # labelled, but not in the folder
    paths = Paths(workspace=tmp_path, root=tmp_path)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    paths.model_file.parent.mkdir(parents=True)
    model.save(paths.model_file)
    cfg = compose(REPO / "conf", [f"scans.dir={scans}"])
    return cfg, paths


def test_bad_files_become_error_rows_and_the_rest_are_predicted(workspace, capsys):
    cfg, paths = workspace
    summary = predict_scans.run(cfg, paths)
    said = capsys.readouterr().out
    assert "predict-scans: 1 file(s) not a picture by its name, skipped: notes.txt" in said
    assert "predict-scans: 1 file(s) in labels.csv but not in the folder: gone.png" in said
    table = pd.read_csv(paths.scans_out_dir / "predictions.csv", keep_default_na=False)
    labels = pd.read_csv(REPO / "data" / "scans" / "labels.csv")
    assert list(table.columns) == [f.name for f in dataclasses.fields(read.Reading)]
    assert len(table) == len(labels) + 2  # notes.txt is not an image
    errors = table[table["error"] != ""]
    assert set(errors["file"]) == {"broken.png", "empty.jpg"}
    reasons = dict(zip(errors["file"], errors["error"], strict=True))
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert reasons["broken.png"].startswith("not a readable image")
    good = table[table["error"] == ""]
    assert good["prediction"].astype(int).between(0, 9).all()
    assert good["label"].astype(int).tolist() == labels["label"].tolist()
    assert (summary["images"], summary["errors"], summary["labelled"]) == (
        len(labels) + 2,
        2,
        len(labels),
    )
    assert 0 <= summary["acceptance_rate"] <= 1
    confidence = pd.to_numeric(table["confidence"], errors="coerce").fillna(0)
    assert (table["accepted"] == "True").tolist() == (confidence >= 0.8).tolist()
    assert (paths.scans_out_dir / "gallery.png").stat().st_size > 10_000


def test_the_stage_walks_the_scans_folder_once(workspace, monkeypatch):
    """Listing a folder of many thousand scans (on a network drive: seconds) happens once; the
    workers' count, the reading and the note on skipped files share that listing."""
    from pathlib import Path

    walks = []
    real_rglob = Path.rglob

    def counted(self, pattern, *args, **kwargs):
        walks.append(self)
        return real_rglob(self, pattern, *args, **kwargs)

    monkeypatch.setattr(Path, "rglob", counted)
    cfg, paths = workspace
    predict_scans.run(cfg, paths)
    assert [w.name for w in walks] == ["scans"]


def test_a_broken_link_named_like_a_picture_is_an_error_row_and_a_folder_is_not(workspace):
    """A scan that a link no longer reaches is reported, not silently skipped; a folder whose
    name ends in .png is neither a picture nor a skipped file."""
    cfg, paths = workspace
    scans = paths.resolve_user_path(cfg.scans.dir)
    (scans / "moved.png").symlink_to(scans / "no-such-scan.png")
    (scans / "album.png").mkdir()
    predict_scans.run(cfg, paths)
    table = pd.read_csv(paths.scans_out_dir / "predictions.csv", keep_default_na=False)
    errors = dict(zip(table["file"], table["error"], strict=True))
    assert errors["moved.png"].startswith("not a readable image")
    assert "album.png" not in errors


def test_empty_folder_is_a_clear_error(workspace, tmp_path):
    cfg, paths = workspace
    (tmp_path / "nothing").mkdir()
    cfg.scans.dir = str(tmp_path / "nothing")
    with pytest.raises(UserError, match="no images"):
        predict_scans.run(cfg, paths)


def test_missing_model_is_a_clear_error(workspace):
    cfg, paths = workspace
    paths.model_file.unlink()
    with pytest.raises(UserError, match="model file not found"):
        predict_scans.run(cfg, paths)


def test_unreadable_model_is_a_clear_error(workspace):
    cfg, paths = workspace
    paths.model_file.write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a readable Keras model"):
        predict_scans.run(cfg, paths)


def test_a_big_folder_streams_in_chunks_and_loses_nothing(workspace, tmp_path, capsys):
    cfg, paths = workspace
    many = tmp_path / "many"
    many.mkdir()
    samples = sorted((REPO / "data" / "scans").glob("scan_*"))
    for i in range(2 * read.CHUNK + 50):
        source = samples[i % len(samples)]
        shutil.copy(source, many / f"{i:04d}{source.suffix}")
    broken = next(many.glob("0100.*"))
    broken.write_bytes(b"broken")
    cfg.scans.dir = str(many)
    cfg.scans.gallery_max = 5
    summary = predict_scans.run(cfg, paths)
    assert summary["images"] == 2 * read.CHUNK + 50 and summary["errors"] == 1
    table = pd.read_csv(paths.scans_out_dir / "predictions.csv", keep_default_na=False)
    assert table.loc[table["file"] == broken.name, "error"].item().startswith("not a readable")
    progress = [line for line in capsys.readouterr().out.splitlines() if "/562 images" in line]
    assert progress == [
        "predict-scans: 256/562 images",
        "predict-scans: 512/562 images",
        "predict-scans: 562/562 images",
    ]


def test_the_stage_module_starts_scan_workers_without_tensorflow():
    """The workers that normalise a big folder import the stage's module again (spawn re-imports
    `__main__`): it must not pull in TensorFlow, MLflow or matplotlib (8 s per worker)."""
    heavy = ("keras", "tensorflow", "mlflow", "matplotlib")
    code = "import sys, digitpipe.stages.predict_scans\n"
    code += f"print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_animated_gif_webp_and_multipage_tiff_are_read_with_a_note(workspace, tmp_path):
    from PIL import Image

    cfg, paths = workspace
    folder = tmp_path / "frames"
    folder.mkdir()
    digit = Image.open(next((REPO / "data" / "scans").glob("scan_001.*"))).convert("L")
    blank = Image.new("L", digit.size, 255)
    digit.save(folder / "anim.gif", save_all=True, append_images=[blank], duration=100)
    digit.save(folder / "anim.webp", save_all=True, append_images=[blank], duration=100)
    digit.save(folder / "pages.tiff", save_all=True, append_images=[blank, blank])
    digit.save(folder / "still.webp")
    cfg.scans.dir = str(folder)
    summary = predict_scans.run(cfg, paths)
    table = pd.read_csv(paths.scans_out_dir / "predictions.csv", keep_default_na=False)
    assert summary["images"] == 4 and summary["errors"] == 0
    notes = dict(zip(table["file"], table["note"], strict=True))
    assert notes["anim.gif"] == "first of 2 frames/pages read"
    assert notes["anim.webp"] == "first of 2 frames/pages read"
    assert notes["pages.tiff"] == "first of 3 frames/pages read"
    assert notes["still.webp"] == ""


def test_the_gallery_says_how_many_of_how_many_it_shows(workspace):
    cfg, paths = workspace
    cfg.scans.gallery_max = 4
    predict_scans.run(cfg, paths)
    # the title is drawn into the PNG; the choice itself is what the stage passes on
    from digitpipe.scans import read

    pick = read.FewPerCase(2)
    chosen = [pick(f"{case}_{k}", case) for case in ("a", "b") for k in range(3)]
    assert chosen == [True, True, False, True, True, False]
    first = read.FirstN(2)
    assert [first(str(k), "") for k in range(4)] == [True, True, False, False]


def test_the_share_of_digits_read_right_says_how_far_a_wrong_number_is_from_right():
    """A 10-digit form row with one digit misread is a wrong picture but nine right digits; a
    lost or split digit shifts the rest, so a wrong count of digits has none right."""
    from digitpipe.scans.read import summarise

    table = pd.DataFrame(
        {
            "file": ["a.png", "b.png", "c.png", "d.png"],
            "prediction": ["0123456789", "0123456788", "012345678", "7"],
            "label": ["0123456789", "0123456789", "0123456789", "7"],
            "correct": [True, False, False, True],
            "accepted": [True, True, True, True],
            "error": ["", "", "", ""],
            "case": ["form_row", "form_row", "form_row", "clean"],
        }
    )
    summary = summarise(table)
    assert summary["by_case"] == {"clean": 1.0, "form_row": round(1 / 3, 4)}
    assert summary["digits_by_case"] == {"clean": 1.0, "form_row": round(19 / 30, 4)}


def test_labels_csv_is_read_as_people_type_it(tmp_path):
    """Spaces after commas, "./" before a name and a trailing space find the picture; a label
    twice with two values, or in digits other than 0-9, is one line naming the file."""
    (tmp_path / "labels.csv").write_text("file, label\n./a.png,7\nb.png ,12\n")
    assert read_labels(tmp_path, "labels.csv") == {"a.png": ("7", ""), "b.png": ("12", "")}
    (tmp_path / "labels.csv").write_text("file,label\na.png,3\na.png,7\n")
    with pytest.raises(UserError, match=r"labels.csv: line 3: 'a.png' is labelled twice: 3 and 7$"):
        read_labels(tmp_path, "labels.csv")
    (tmp_path / "labels.csv").write_text("file,label\na.png,\u0667\n")  # an Arabic-Indic 7
    with pytest.raises(UserError, match="line 2: 'a.png': the label is not made of digits 0-9"):
        read_labels(tmp_path, "labels.csv")


def test_labels_csv_from_a_spreadsheet_is_read(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark and ends lines with CRLF, often with a
    blank line at the end; its header may be capitalised, and an optional column at the end of
    a row may be left out."""
    (tmp_path / "labels.csv").write_bytes(
        b"\xef\xbb\xbfFile,Label,Case\r\na.png,42,mine\r\n\r\nb.png,7\r\n"
    )
    assert read_labels(tmp_path, "labels.csv") == {"a.png": ("42", "mine"), "b.png": ("7", "")}


HEADER = "needs a header row with columns file,label (and optionally case); its first row is: "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", f"{HEADER}(the file is empty)"),
        (b"name,digit\na.png,4\n", f"{HEADER}name,digit"),
        (b"file;label\na.png;4\n", f"{HEADER}file;label (separated by ';': use commas)"),
        (b"file\tlabel\na.png\t4\n", f"{HEADER}file\tlabel (separated by tabs: use commas)"),
        (b"file,label\na.png,4,x\n", "line 2 has 3 fields, the header 2: a.png,4,x"),
        (b"file,label,case\na.png\n", "line 2 has 1 fields, the header 3: a.png"),
        (b"file,label\n\na.png,4\nb.png,\n",
         "line 4: 'b.png' has an empty label (leave a picture without one out)"),
        (b'file,label,case\n"a.png",4,"two\nlines"\n,5\n', "line 4: no file name"),
        (b"file,label\na.png,4\n\xff\xfe", "line 3 is not UTF-8 text (invalid start byte): "
                                          "save it as CSV UTF-8"),
    ],
    ids=["empty", "other-header", "semicolons", "tabs", "extra-field", "no-label-field",
         "empty-label", "no-file-after-a-two-line-field", "utf-16"],
)  # fmt: skip
def test_a_labels_file_mistake_is_one_line_naming_the_line(tmp_path, text, message):
    (tmp_path / "labels.csv").write_bytes(text)
    with pytest.raises(UserError) as raised:
        read_labels(tmp_path, "labels.csv")
    assert str(raised.value) == f"{tmp_path / 'labels.csv'}: {message}"


def test_make_scans_keeps_the_labels_of_your_own_pictures(tmp_path):
    """`make scans` writes the samples again into a folder that also holds the user's own
    pictures: their rows of labels.csv stay; a labels.csv it cannot read is left untouched."""
    from digitpipe.scans import synthetic

    first = synthetic.sample_name(1)  # a sample's own row is written again
    (tmp_path / "labels.csv").write_text(f"file,label\nmy_number.jpg,174\n{first},9\n")
    samples = synthetic.make(tmp_path, per_digit=1)
    written = pd.read_csv(tmp_path / "labels.csv", dtype=str)
    assert written["file"].tolist() == [*samples["file"], "my_number.jpg"]
    assert written.set_index("file").loc["my_number.jpg", "label"] == "174"
    assert samples.attrs["kept"] == 1

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "labels.csv").write_text("name,digit\nmine.png,4\n")
    with pytest.raises(UserError, match=r"first row is: name,digit \(make scans keeps its rows"):
        synthetic.make(broken, per_digit=1)
    assert sorted(p.name for p in broken.iterdir()) == ["labels.csv"]  # nothing written


def test_a_labels_file_that_is_not_there_is_said(workspace, capsys):
    """A misspelt scans.labels_file used to read the pictures and measure nothing, silently."""
    cfg, paths = workspace
    cfg.scans.labels_file = "label.csv"
    summary = predict_scans.run(cfg, paths)
    assert "accuracy" not in summary
    folder = paths.resolve_user_path(cfg.scans.dir)
    said = capsys.readouterr().out
    assert f"predict-scans: no label.csv in {folder}: read without labels, no accuracy" in said


def test_a_wrong_long_number_keeps_its_label_in_the_gallery_caption():
    """A narrow gallery cell cuts the caption's end: the label comes before the confidence."""
    wrong = read.Reading("form_row_01.png", "1234567890", 0.42, label="1234567891", correct=False)
    name, reading = wrong.caption().split("\n")
    assert name == "form_row_01.png"
    assert reading == "→ 1234567890? ✗ 1234567891 (0.42)"
    right = read.Reading("scan_001.png", "7", 0.99, accepted=True, label="7", correct=True)
    assert right.caption() == "scan_001.png\n→ 7 ✓ (0.99)"
    # cut to its cell: the file name keeps its end, the reading its start, and a cut shows
    from digitpipe.plots import cell_caption

    long = dataclasses.replace(wrong, file="my_photos/2026/page_of_numbers_07.jpg")
    assert cell_caption(long.caption()) == (
        "…/page_of_numbers_07.jpg\n→ 1234567890? ✗ 1234567891 (0…"
    )
    assert cell_caption(right.caption()) == right.caption()
