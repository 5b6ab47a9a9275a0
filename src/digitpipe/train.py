"""Stage train: build the configured architecture, fit it on the prepared data, save it."""

from __future__ import annotations

import json
import time

import keras
import numpy as np
from omegaconf import DictConfig

from digitpipe import dataset, models, plots, tracking
from digitpipe.config import load_params
from digitpipe.errors import cli
from digitpipe.paths import Paths


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_time_s` to each epoch's logs (so CSVLogger and MLflow record it)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self._start


def fit(cfg: DictConfig, paths: Paths) -> tuple[keras.Model, dict]:
    """Seeded training; returns the model and a summary (params, time, last epoch metrics)."""
    x_train, y_train = dataset.load(paths.prepared_dir, "train")
    x_val, y_val = dataset.load(paths.prepared_dir, "val")
    keras.utils.set_random_seed(cfg.train.seed)
    model = models.build(cfg.model)
    model.compile(
        optimizer=models.make_optimizer(cfg.train), loss=cfg.train.loss, metrics=["accuracy"]
    )
    paths.train_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        EpochTimer(),
        keras.callbacks.CSVLogger(str(paths.history_file)),
        tracking.epoch_callback(),
    ]
    validation = (x_val, keras.utils.to_categorical(y_val, 10)) if len(y_val) else None
    print(
        f"train: {cfg.model.name}, {len(y_train)} images, {cfg.train.epochs} epochs, "
        f"batch {cfg.train.batch_size}, {model.count_params():,} params"
    )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        keras.utils.to_categorical(y_train, 10),
        batch_size=cfg.train.batch_size,
        epochs=cfg.train.epochs,
        validation_data=validation,
        callbacks=callbacks,
        verbose=cfg.train.verbose,
    )
    train_time = time.perf_counter() - start
    last = {k: float(v[-1]) for k, v in history.history.items()}
    summary = {
        "params": int(model.count_params()),
        "train_time_s": round(train_time, 2),
        "images_per_s": round(len(y_train) * cfg.train.epochs / train_time, 1),
        "epochs": cfg.train.epochs,
        **{f"final_{k}": round(v, 5) for k, v in last.items() if k != "epoch_time_s"},
    }
    return model, summary


def run(cfg: DictConfig, paths: Paths, tags: dict[str, str] | None = None) -> dict:
    with tracking.start_pipeline_run(cfg, paths, tags=tags):
        model, summary = fit(cfg, paths)
        model.save(paths.model_file)
        (paths.train_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        curves = plots.training_curves(paths.history_file, paths.train_dir / "curves.png")
        tracking.log_metrics(
            {
                "params": summary["params"],
                "train_time_s": summary["train_time_s"],
                "images_per_s": summary["images_per_s"],
            }
        )
        tracking.log_files(paths.history_file, curves, folder="train")
        if cfg.mlflow.log_model:
            example = np.load(paths.prepared_dir / "test.npz")["x"][:3]
            tracking.log_keras_model(model, example)
    print(
        f"train: saved {paths.model_file} ({summary['train_time_s']} s, "
        f"{summary['images_per_s']} img/s)"
    )
    return summary


@cli
def main() -> None:
    paths = Paths.here()
    run(load_params(paths.params_file), paths)


if __name__ == "__main__":
    main()
