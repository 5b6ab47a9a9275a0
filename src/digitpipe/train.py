"""Stage train: build the configured architecture, fit it on the prepared data, save it."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time

import keras
import numpy as np
from omegaconf import DictConfig, OmegaConf

from digitpipe import dataset, models, plots, tracking
from digitpipe.paths import Paths
from digitpipe.stage import run_stage


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_time_s` to each epoch's logs (so CSVLogger and MLflow record it)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self._start


def fingerprint(cfg: DictConfig) -> str:
    """What a backup belongs to: a changed config must not resume an old run's weights."""
    used = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "model", "train")}
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()


def resumable_run_id(cfg: DictConfig, paths: Paths) -> str | None:
    """The MLflow run of an interrupted training of this very config, if one can resume.

    Everything a resume needs lives in the backup folder: DVC deletes a stage's outs before
    running it again, so the run file and history in outputs/train/ may be gone.
    """
    backup = paths.backup_dir
    marker = backup / "fingerprint"
    if cfg.train.resume and marker.is_file() and marker.read_text() == fingerprint(cfg):
        try:
            return json.loads((backup / "run.json").read_text())["run_id"]
        except (OSError, ValueError, KeyError):
            pass
    shutil.rmtree(backup, ignore_errors=True)
    return None


def prepare_backup(cfg: DictConfig, paths: Paths, run_id: str) -> None:
    """Mark the backup folder with this config and run, so a rerun knows what it may resume."""
    paths.backup_dir.mkdir(parents=True, exist_ok=True)
    (paths.backup_dir / "fingerprint").write_text(fingerprint(cfg))
    (paths.backup_dir / "run.json").write_text(json.dumps({"run_id": run_id}))


def learning_rate(train_cfg: DictConfig, steps_per_epoch: int):
    """A float, or a cosine schedule with optional linear warmup from lr/10."""
    if train_cfg.lr_schedule == "constant":
        return train_cfg.learning_rate
    warmup = train_cfg.warmup_epochs * steps_per_epoch
    total = train_cfg.epochs * steps_per_epoch
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(train_cfg.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        train_cfg.learning_rate / 10, total - warmup,
        warmup_target=train_cfg.learning_rate, warmup_steps=warmup,
    )  # fmt: skip


def training_inputs(x, y, train_cfg: DictConfig) -> dict:
    """Arguments for model.fit: plain arrays, or a cached, prefetched tf.data pipeline (always
    when augmenting: scan-like augmentation runs per batch inside it)."""
    augment = train_cfg.augment.enabled
    if train_cfg.input_pipeline == "numpy" and not augment:
        return {"x": x, "y": y, "batch_size": train_cfg.batch_size}
    import tensorflow as tf

    data = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .cache()
        .shuffle(len(x), seed=train_cfg.seed, reshuffle_each_iteration=True)
        .batch(train_cfg.batch_size)
    )
    if augment:
        from digitpipe.augment import batch_augmenter

        augmenter = batch_augmenter(train_cfg.augment, train_cfg.seed)
        data = data.map(augmenter, num_parallel_calls=tf.data.AUTOTUNE)
    return {"x": data.prefetch(tf.data.AUTOTUNE)}


def live_history(paths: Paths, train_cfg: DictConfig):
    """Where the per-epoch CSV grows during training (inside the backup when resumable)."""
    return paths.backup_dir / "history.csv" if train_cfg.resume else paths.history_file


def trim_history(paths: Paths, train_cfg: DictConfig) -> None:
    """On resume, keep only the epochs the backup holds: an epoch cut short is done again."""
    history = live_history(paths, train_cfg)
    metadata = paths.backup_dir / "checkpoint" / "training_metadata.json"
    if not history.is_file() or not metadata.is_file():
        return
    done = json.loads(metadata.read_text())["epoch"]
    lines = history.read_text().splitlines(keepends=True)
    history.write_text("".join(lines[: 1 + done]))  # header + one row per finished epoch


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
    chosen.append(keras.callbacks.CSVLogger(str(live_history(paths, t)), append=resuming))
    chosen.append(tracking.epoch_callback())
    if t.resume:
        backup = keras.callbacks.BackupAndRestore(
            str(paths.backup_dir / "checkpoint"), double_checkpoint=True
        )
        chosen.append(backup)
    return chosen


def fit(cfg: DictConfig, paths: Paths, resuming: bool = False) -> tuple[keras.Model, dict]:
    """Seeded training; returns the model and a summary (params, time, last epoch metrics)."""
    t = cfg.train
    x_train, y_train = dataset.load(paths.prepared_dir, "train")
    x_val, y_val = dataset.load(paths.prepared_dir, "val")
    keras.utils.set_random_seed(t.seed)
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if t.mixed_precision else "float32")
    model = models.build(cfg.model)
    steps = math.ceil(len(y_train) / t.batch_size)
    loss = (
        keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing)
        if t.loss == "categorical_crossentropy"
        else t.loss
    )
    model.compile(
        optimizer=models.make_optimizer(t, learning_rate(t, steps)),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=t.jit_compile,
    )
    paths.train_dir.mkdir(parents=True, exist_ok=True)
    if resuming:
        trim_history(paths, t)
    validation = (x_val, keras.utils.to_categorical(y_val, 10)) if len(y_val) else None
    print(
        f"train: {cfg.model.name}, {len(y_train)} images, {t.epochs} epochs, batch {t.batch_size}, "
        f"{model.count_params():,} params{', resuming' if resuming else ''}"
    )
    start = time.perf_counter()
    history = model.fit(
        **training_inputs(x_train, keras.utils.to_categorical(y_train, 10), t),
        epochs=t.epochs,
        validation_data=validation,
        callbacks=callbacks(cfg, paths, resuming),
        verbose=t.verbose,
    )
    train_time = time.perf_counter() - start
    epochs_run = len(history.history.get("loss", []))
    last = {k: float(v[-1]) for k, v in history.history.items() if v}
    summary = {
        "params": int(model.count_params()),
        "train_time_s": round(train_time, 2),
        "images_per_s": round(len(y_train) * max(epochs_run, 1) / train_time, 1),
        "epochs": t.epochs,
        "epochs_run": epochs_run,
        **{f"final_{k}": round(v, 5) for k, v in last.items() if k != "epoch_time_s"},
    }
    if history.history.get("val_accuracy"):
        summary["best_val_accuracy"] = round(max(history.history["val_accuracy"]), 5)
    return model, summary


def run(
    cfg: DictConfig,
    paths: Paths,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> dict:
    resume_id = resumable_run_id(cfg, paths)
    with tracking.start_pipeline_run(
        cfg, paths, tags=tags, resume_run_id=resume_id, parent_run_id=parent_run_id
    ) as mlrun:
        if cfg.train.resume:
            prepare_backup(cfg, paths, mlrun.info.run_id)
        model, summary = fit(cfg, paths, resuming=resume_id is not None)
        model.save(paths.model_file)
        if cfg.train.resume:
            shutil.copyfile(live_history(paths, cfg.train), paths.history_file)
        shutil.rmtree(paths.backup_dir, ignore_errors=True)
        (paths.train_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        curves = plots.training_curves(paths.history_file, paths.train_dir / "curves.png")
        tracking.log_metrics(
            {k: summary[k] for k in ("params", "train_time_s", "images_per_s", "epochs_run")}
        )
        tracking.log_files(paths.history_file, curves, folder="train")
        if cfg.mlflow.log_model:
            example = np.load(paths.prepared_dir / "test.npz")["x"][:3]
            tracking.record_model(paths, tracking.log_keras_model(model, example))
    print(
        f"train: saved {paths.model_file} ({summary['train_time_s']} s, "
        f"{summary['images_per_s']} img/s)"
    )
    return summary


if __name__ == "__main__":
    run_stage(run)
