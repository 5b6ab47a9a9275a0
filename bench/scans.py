"""predict-scans speed (after the model is loaded, and end to end) and peak memory."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time

import keras
import numpy as np
from omegaconf import OmegaConf

from bench.common import REPO, env, peak_rss_mib, scratch, timed
from digitpipe import models
from digitpipe.config import compose
from digitpipe.paths import Paths
from digitpipe.scans import normalise, read, synthetic


def scan_folder(n_per_digit: int) -> tuple:
    folder = scratch() / f"scans-{n_per_digit * 10}"
    if not folder.exists():
        synthetic.make(folder, per_digit=n_per_digit, seed=7)
    return folder


def workspace_with_model(folder) -> Paths:
    """A workspace holding a seed_blog_cnn model file (untrained: speed does not need skill)."""
    paths = Paths(workspace=scratch() / f"predict-{folder.name}", root=REPO)
    cfg = compose(REPO / "conf", [f"scans.dir={folder}"])
    keras.utils.set_random_seed(0)
    paths.model_file.parent.mkdir(parents=True, exist_ok=True)
    models.build(cfg.model).save(paths.model_file)
    shutil.copy(REPO / "dvc.yaml", paths.workspace / "dvc.yaml")  # the stages train tracks
    (paths.workspace / "params.yaml").write_text(OmegaConf.to_yaml(cfg))
    return paths


def photo_seconds(repeat: int = 5) -> list[float]:
    """Seconds to read a 12-megapixel phone photo of a page (decode, EXIF, find the writing,
    normalise each digit): the benchmark's page photo enlarged to a phone's resolution."""
    from PIL import Image
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(12)
    digits = load_digits()
    small = synthetic.page_photo([digits.images[i] for i in (3, 17, 29, 40, 51)], rng)
    path = scratch() / "photo-12mp.jpg"
    small.resize((3024, 4032), Image.Resampling.BICUBIC).save(
        path, quality=90, exif=small.info["exif"]
    )
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        picture = normalise.read_digits(path, split=True, thumbnail=True)
        times.append(time.perf_counter() - start)
        assert len(picture.inputs) == 5, picture.error
    return times


def imageops_speed() -> tuple[list[list], dict]:
    """scipy.ndimage against OpenCV (scans/imageops.py) on one scan-sized picture: the
    measurement behind the choice. Microseconds per call, min / median of 5 x 500 calls."""
    import timeit

    from scipy import ndimage

    from digitpipe.scans import imageops

    gray = normalise.load_gray(sorted(scan_folder(100).glob("scan_*"))[3])
    ink = np.ascontiguousarray(1.0 - gray)
    mask = ink > 0.5
    pairs = {
        "opening 15x15": (lambda: ndimage.grey_opening(ink, size=15),
                          lambda: imageops.grey_opening(ink, 15)),
        "mean filter 3x3": (lambda: ndimage.uniform_filter(ink, 3),
                            lambda: imageops.mean_filter(ink, 3)),
        "binary erosion": (lambda: ndimage.binary_erosion(mask),
                           lambda: imageops.binary_erosion(mask)),
        "connected pieces + boxes": (lambda: ndimage.find_objects(ndimage.label(mask)[0]),
                                     lambda: imageops.components(mask)),
    }  # fmt: skip
    rows, results = [], {}
    for name, (scipy_op, opencv_op) in pairs.items():
        spent = {}
        for lib, op in (("scipy", scipy_op), ("opencv", opencv_op)):
            runs = [t / 500 * 1e6 for t in timeit.repeat(op, number=500, repeat=5)]
            spent[lib] = (min(runs), statistics.median(runs))
            results[f"imageops_{name.split()[0]}_{lib}_us"] = round(min(runs), 1)
        (a, b), (c, d) = spent["scipy"], spent["opencv"]
        rows.append([f"{name} on {ink.shape[1]}x{ink.shape[0]}: scipy vs OpenCV (min / median)",
                     f"{a:.0f} / {b:.0f} vs {c:.0f} / {d:.0f} µs ({a / c:.1f}x)"])  # fmt: skip
    return rows, results


def measure() -> tuple[list[list], dict]:
    thousand = scan_folder(100)
    paths = workspace_with_model(thousand)
    model = models.load(paths.model_file)
    listing = read.list_folder(thousand)  # listed once, as the stage does
    files = listing.pictures
    warm = [normalise.read_digits(f, True, False) for f in files[:32]]
    read.predict_chunk(model, warm)  # warm-up: the first predict traces
    per_picture = []  # one core, one picture after another: the normalising cost itself
    for _ in range(3):
        start = time.perf_counter()
        for f in files[:300]:
            normalise.read_digits(f, True, False)
        per_picture.append((time.perf_counter() - start) / 300 * 1000)
    rates = []  # as the stage reads: workers started (while the model loads), then read_folder
    for _ in range(3):
        with read.workers(len(files)) as pool:
            time.sleep(2)  # in the stage, the workers start while the model loads (1-10 s)
            start = time.perf_counter()
            read.read_folder(model, listing, "labels.csv", True, 0.8, read.FirstN(0), pool)
            rates.append(len(files) / (time.perf_counter() - start))
    rate = statistics.median(rates)

    photo_s = photo_seconds()

    hundred = scan_folder(10)
    small = workspace_with_model(hundred)
    end_to_end, _ = timed(
        ["python", "-m", "digitpipe.stages.predict_scans"], small.workspace, repeat=3
    )
    stage_1000, _ = timed(
        ["python", "-m", "digitpipe.stages.predict_scans"], paths.workspace, repeat=3
    )
    rss_1000 = peak_rss_mib(["python", "-m", "digitpipe.stages.predict_scans"], paths.workspace)
    rows = [
        ["predict-scans after model load, 1,000 scans (min / median of 3)",
         f"{min(rates):.0f} / {rate:.0f} images/s"],
        ["normalising one picture on one core (min / median of 3 x 300)",
         f"{min(per_picture):.2f} / {statistics.median(per_picture):.2f} ms"],
        ["predict-scans end to end, 100 scans (median of 3)", f"{end_to_end:.2f} s"],
        ["predict-scans end to end, 1,000 scans (median of 3)", f"{stage_1000:.2f} s"],
        ["peak RSS, predict-scans on 1,000 scans", f"{rss_1000:.0f} MiB"],
        ["12-MP page photo (4032x3024 JPEG), read to digits (min / median of 5)",
         f"{min(photo_s):.2f} / {statistics.median(photo_s):.2f} s"],
    ]  # fmt: skip
    results = {
        "scans_img_s": round(rate),
        "scans_img_s_min": round(min(rates)),
        "normalise_ms_min": round(min(per_picture), 2),
        "scans_100_end_to_end_s": round(end_to_end, 2),
        "scans_1000_end_to_end_s": round(stage_1000, 2),
        "scans_1000_peak_rss_mib": round(rss_1000),
        "photo_12mp_s_min": round(min(photo_s), 3),
        "photo_12mp_s_median": round(statistics.median(photo_s), 3),
    }
    ops_rows, ops_results = imageops_speed()
    return rows + ops_rows, results | ops_results


def train_peak_rss() -> tuple[list[list], dict]:
    """Peak RSS of the train stage on full MNIST (default config, one epoch)."""
    paths = Paths(workspace=scratch() / "rss-train", root=REPO)
    cfg = compose(REPO / "conf", ["train.epochs=1", "mlflow.log_model=false", "train.verbose=0"])
    from digitpipe.stages import prepare

    prepare.run(cfg, paths)
    shutil.copy(REPO / "dvc.yaml", paths.workspace / "dvc.yaml")  # the stages train tracks
    (paths.workspace / "params.yaml").write_text(OmegaConf.to_yaml(cfg))
    rss = peak_rss_mib(["python", "-m", "digitpipe.stages.train"], paths.workspace)
    subprocess.run(["true"], env=env())
    return [["peak RSS, train on full MNIST (1 epoch)", f"{rss:.0f} MiB"]], {
        "train_full_peak_rss_mib": round(rss)
    }
