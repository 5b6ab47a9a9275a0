"""Stage train: build the configured architecture, fit it on the prepared data, save it.

Everything that can be wrong in the config (layer arguments, shapes, optimizer, loss) fails
while the model is built, before any file or MLflow run is created.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from digitpipe import models, plots, precision, resume, tracking
from digitpipe.errors import UserError
from digitpipe.mnist import splits
from digitpipe.paths import Paths
from digitpipe.stages import run_stage, tracked_stages

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_time_s` to each epoch's logs (so CSVLogger and MLflow record it)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self._start


def learning_rate(
    train_cfg: DictConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """A float, or a cosine schedule with optional linear warmup from lr x warmup_start (a
    fractional warmup with a small start is the one-cycle schedule of fast one-epoch runs)."""
    if train_cfg.lr_schedule == "constant":
        return train_cfg.learning_rate
    warmup = round(train_cfg.warmup_epochs * steps_per_epoch)
    total = train_cfg.epochs * steps_per_epoch
    if warmup >= total:
        raise UserError(
            f"config: train.warmup_epochs={train_cfg.warmup_epochs} leaves no step to decay in "
            f"{train_cfg.epochs} epochs of {steps_per_epoch} steps: make it shorter"
        )
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(train_cfg.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        train_cfg.learning_rate * train_cfg.warmup_start, total - warmup,
        warmup_target=train_cfg.learning_rate, warmup_steps=warmup,
    )  # fmt: skip


def training_inputs(x: np.ndarray, y: np.ndarray, train_cfg: DictConfig) -> dict:
    """Arguments for model.fit: plain arrays, or a cached, prefetched tf.data pipeline (always
    when augmenting: scan-like augmentation and the coarse copies' share run per batch in it)."""
    augment, coarse_share = train_cfg.augment.enabled, train_cfg.coarse_digits
    if train_cfg.input_pipeline == "numpy" and not augment and not coarse_share:
        return {"x": x, "y": y, "batch_size": train_cfg.batch_size}
    import tensorflow as tf

    columns = (x, y)
    if coarse_share:
        from digitpipe import coarse

        started = time.perf_counter()
        columns = (x, coarse.copies(x, train_cfg.seed), y)
        print(f"train: coarse copies of {len(x)} digits in {time.perf_counter() - started:.1f} s")
    data = (
        tf.data.Dataset.from_tensor_slices(columns)
        .cache()
        .shuffle(len(x), seed=train_cfg.seed, reshuffle_each_iteration=True)
        .batch(train_cfg.batch_size)
    )
    if coarse_share:
        data = data.map(coarse_or_not(coarse_share))
    if augment:
        from digitpipe.augment import batch_augmenter

        augmenter = batch_augmenter(train_cfg.augment, train_cfg.seed)
        # one batch at a time: the augmentation's random draws then follow the batches, so a
        # seed gives the same training (mapped in parallel, weights differed run to run; no
        # slower measured: 1,249-1,332 against 952-1,366 img/s on scan_robust, when it trained
        # with the scan-like augmentation)
        data = data.map(augmenter)
    return {"x": data.prefetch(tf.data.AUTOTUNE)}


def coarse_or_not(
    share: float,
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """tf.data map: each digit of a batch is its coarse copy with probability `share`, else
    itself; the batches are reshuffled every epoch, so other digits are copies each epoch."""
    import tensorflow as tf

    def pick(x: tf.Tensor, copy: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        chosen = tf.random.uniform([tf.shape(x)[0], 1, 1, 1]) < share
        return tf.where(chosen, copy, x), y

    return pick


def callbacks(cfg: DictConfig, paths: Paths, resuming: bool) -> list[keras.callbacks.Callback]:
    """Timing, early stopping, the CSV and MLflow logs, and the backup last: whatever a resume
    restores has been logged already."""
    t = cfg.train
    chosen: list[keras.callbacks.Callback] = [EpochTimer()]
    if t.early_stopping_patience is not None or t.restore_best:
        chosen.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                patience=t.early_stopping_patience or t.epochs,
                restore_best_weights=t.restore_best,
                verbose=1,
            )
        )
    chosen.append(keras.callbacks.CSVLogger(str(resume.live_history(paths, t)), append=resuming))
    chosen.append(tracking.epoch_callback())
    if t.resume:
        backup = keras.callbacks.BackupAndRestore(
            str(paths.backup_dir / "checkpoint"), double_checkpoint=True
        )
        chosen.append(backup)
    return chosen


def compiled_model(cfg: DictConfig, train_images: int) -> keras.Model:
    """The architecture under the chosen precision, compiled; config mistakes are one line."""
    t = cfg.train
    keras.utils.set_random_seed(t.seed)
    model = models.build(cfg.model)
    steps = math.ceil(train_images / t.batch_size)
    model.compile(
        optimizer=models.make_optimizer(
            t.optimizer, learning_rate(t, steps), OmegaConf.to_container(t.optimizer_options)
        ),
        loss=models.make_loss(t.loss, t.label_smoothing),
        metrics=["accuracy"],
        jit_compile=t.jit_compile,
    )
    return model


def whole_training(history_csv: Path, train_images: int, epochs: int) -> dict:
    """Totals over every epoch in the history, including those before a resume."""
    history = pd.read_csv(history_csv)
    train_time = float(history["epoch_time_s"].sum())
    summary = {
        "train_time_s": round(train_time, 2),
        "images_per_s": round(train_images * len(history) / max(train_time, 1e-9), 1),
        "epochs": epochs,
        "epochs_run": int(len(history)),
        **{
            f"final_{k}": round(float(v), 5)
            for k, v in history.iloc[-1].items()
            if k not in ("epoch", "epoch_time_s", "learning_rate")
        },
    }
    if "val_accuracy" in history:
        summary["best_val_accuracy"] = round(float(history["val_accuracy"].max()), 5)
    return summary


def fit(cfg: DictConfig, paths: Paths, model: keras.Model, data: dict, resuming: bool) -> dict:
    """Seeded training; returns the summary over the whole training (resumes included)."""
    t = cfg.train
    (x_train, y_train), (x_val, y_val) = data["train"], data["val"]
    if resuming:
        resume.trim_history(paths, t)
    validation = (x_val, keras.utils.to_categorical(y_val, 10)) if len(y_val) else None
    epochs = f"{t.epochs} epoch" + ("" if t.epochs == 1 else "s")
    print(
        f"train: {cfg.model.name}, {len(y_train)} images, {epochs}, batch {t.batch_size}, "
        f"{model.count_params():,} params{', resuming' if resuming else ''}"
    )
    model.fit(
        **training_inputs(x_train, keras.utils.to_categorical(y_train, 10), t),
        epochs=t.epochs,
        validation_data=validation,
        callbacks=callbacks(cfg, paths, resuming),
        verbose=t.verbose,
    )
    summary = whole_training(resume.live_history(paths, t), len(y_train), t.epochs)
    return {"parameters": int(model.count_params()), **summary}


def set_up_this_machine(train_cfg: DictConfig) -> dict[str, str]:
    """Precision, threads and oneDNN kernels for this machine: printed, and returned as the
    run's tags (a figure means little without the machine it came from)."""
    threads = precision.reserved_threads()
    precision.match_threads(threads)
    chosen = precision.for_this_machine(train_cfg.mixed_precision)
    keras.mixed_precision.set_dtype_policy(chosen.policy)
    reserved = f", {threads} threads reserved" if threads else ""
    print(f"train: precision {chosen.policy} ({chosen.reason}){reserved}")
    onednn, onednn_reason = precision.onednn()
    print(f"train: oneDNN kernels {onednn} ({onednn_reason})")
    return {
        "precision": chosen.policy,
        "precision_reason": chosen.reason,
        "threads": str(threads or "all"),
        "onednn": onednn,
        "onednn_reason": onednn_reason,
    }


def write_outputs(cfg: DictConfig, paths: Paths, model: keras.Model, summary: dict) -> list[Path]:
    """The model, its history and summary, and the figures; the finished training's backup
    removed. Returns the files MLflow gets."""
    model.save(paths.model_file)
    if cfg.train.resume:
        shutil.copyfile(resume.live_history(paths, cfg.train), paths.history_file)
    shutil.rmtree(paths.backup_dir, ignore_errors=True)
    paths.summary_file.write_text(json.dumps(summary, indent=2) + "\n")
    return [
        paths.history_file,
        plots.training_curves(paths.history_file, paths.train_dir / "curves.png"),
        plots.model_diagram(model, paths.train_dir / "model.png"),
        models.write_summary(model, paths.train_dir / "model_summary.txt"),
    ]


def log_outputs(
    cfg: DictConfig,
    paths: Paths,
    model: keras.Model,
    example: np.ndarray,
    summary: dict,
    files: list[Path],
) -> None:
    """Figures and files to the pipeline run, and the model (its URI kept in the run file for
    the evaluate stage, which registers it)."""
    keys = ("parameters", "train_time_s", "images_per_s", "epochs_run")
    tracking.log_metrics({k: summary[k] for k in keys})
    tracking.log_files(*files, folder="train")
    if cfg.mlflow.log_model:
        model_uri = tracking.log_keras_model(
            model, example, cfg.model.name, last_epoch=summary["epochs_run"] - 1
        )
        tracking.write_run_file(paths, tracking.read_run_file(paths) | {"model_uri": model_uri})


def run(
    cfg: DictConfig,
    paths: Paths,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> dict:
    machine = set_up_this_machine(cfg.train)
    data = {name: splits.load(paths.prepared_dir, name) for name in ("train", "val")}
    model = compiled_model(cfg, len(data["train"][1]))
    with resume.owned_train_dir(paths):
        resume_id = resume.resumable_run_id(cfg, paths)
        with tracking.start_pipeline_run(
            cfg,
            paths,
            tracked_stages(cfg, paths),
            tags=(tags or {}) | machine,
            resume_run_id=resume_id,
            parent_run_id=parent_run_id,
            attempt=(lambda: resume.attempt_key(cfg, paths)) if cfg.train.resume else None,
        ) as mlrun:
            if link := tracking.run_link(mlrun.info.run_id, mlrun.info.experiment_id):
                print(f"train: MLflow run {link}")
            if cfg.train.resume:
                resume.prepare_backup(cfg, paths, mlrun.info.run_id)
            tracking.log_datasets(
                {s: splits.file(paths.prepared_dir, s) for s in ("train", "val", "test")}
            )
            summary = fit(cfg, paths, model, data, resuming=resume_id is not None)
            files = write_outputs(cfg, paths, model, summary)
            example = data["train"][0][:3]  # the model's signature needs shapes only
            log_outputs(cfg, paths, model, example, summary, files)
    print(
        f"train: saved {paths.model_file} ({summary['train_time_s']} s, "
        f"{summary['images_per_s']} img/s)"
    )
    return summary


if __name__ == "__main__":
    run_stage(run)
