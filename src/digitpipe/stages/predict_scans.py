"""Stage predict-scans: read real scans/photos of handwritten digits (scans.dir).

Results go to the pipeline's MLflow run only when they belong to it: its own model and the scans
folder its config names. Another folder or model gets a run of its own, linked by tags
(scans/results.py).

Keras, MLflow and matplotlib are imported where they are used, not at the top: the worker
processes that normalise a big folder import this module again (multiprocessing's spawn
re-imports `__main__`), and with TensorFlow each of them took about 8 s to start.
"""

from __future__ import annotations

from omegaconf import DictConfig

from digitpipe.paths import Paths
from digitpipe.scans import read
from digitpipe.scans.results import load_model, log_results, mlflow_metrics, write
from digitpipe.stages import run_stage


def run(cfg: DictConfig, paths: Paths) -> dict:
    from digitpipe import plots

    s = cfg.scans
    listing = read.list_folder(paths.resolve_user_path(s.dir))
    with read.workers(len(listing.pictures)) as pool:  # they start while the model loads
        model, source = load_model(cfg, paths)
        table, gallery = read.read_folder(
            model, listing, s.labels_file, s.split_digits, s.min_confidence,
            gallery_pick=read.FirstN(s.gallery_max), pool=pool,
        )  # fmt: skip
    summary = read.summarise(table) | source

    out = paths.scans_out_dir
    files = write(out, table, summary, "scans")
    accuracy = f", accuracy {summary['accuracy']:.1%}" if "accuracy" in summary else ""
    title = f"Scans: {len(gallery)} of {summary['images']} shown{accuracy} ('?' = unsure)"
    files.append(plots.scan_gallery(gallery, out / "gallery.png", title))
    keys = ("scans.dir", "scans.labels_file", "scans.split_digits", "scans.min_confidence")
    metrics = mlflow_metrics(summary, "scan")
    log_results(cfg, paths, "predict-scans", keys, metrics, files, source.get("model"))
    read.report_problems(table, "predict-scans")
    read_by = f" (model {source['model']})" if source else ""
    print(
        f"predict-scans: {summary['images']} images, {summary['errors']} errors{accuracy}{read_by}"
    )
    return summary


if __name__ == "__main__":
    run_stage(run)
