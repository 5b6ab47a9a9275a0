"""Training speed: the plain recipe vs the pipeline's training path, same data, same models."""

from __future__ import annotations

import json

import keras
import pandas as pd

from bench.common import REPO, scratch
from digitpipe import models
from digitpipe.config import compose
from digitpipe.mnist import splits
from digitpipe.paths import Paths
from digitpipe.stages import prepare, train

ARCHITECTURES = ["seed_blog_cnn", "seed_lab_cnn", "keras_convnet", "lenet5", "digitnet"]


def workspace(name: str, overrides: list[str]) -> tuple[Paths, list[str]]:
    """A scratch workspace with MNIST prepared as `overrides` say (raw files from the repo)."""
    paths = Paths(workspace=scratch() / name, root=REPO)
    prepare.run(compose(REPO / "conf", overrides), paths)
    return paths, overrides


def plain_recipe(model_name: str, paths: Paths, epochs: int) -> tuple[keras.Model, list[float]]:
    """The origin's recipe: model.fit on NumPy arrays, Adam, batch 64, float32, defaults."""
    cfg = compose(REPO / "conf", [f"model={model_name}"])
    x, y = splits.load(paths.prepared_dir, "train")
    keras.mixed_precision.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    model = models.build(cfg.model)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x,
        keras.utils.to_categorical(y, 10),
        batch_size=64,
        epochs=epochs,
        callbacks=[train.EpochTimer()],
        verbose=0,
    )
    return model, history.history["epoch_time_s"]


def pipeline(overrides: list[str], paths: Paths) -> tuple[dict, list[float]]:
    """The pipeline's own train stage (MLflow logging included, model upload off)."""
    cfg = compose(REPO / "conf", [*overrides, "mlflow.log_model=false", "train.verbose=0"])
    summary = train.run(cfg, paths)
    return summary, pd.read_csv(paths.history_file)["epoch_time_s"].tolist()


def test_accuracy(model: keras.Model, paths: Paths) -> float:
    x, y = splits.load(paths.prepared_dir, "test")
    return float((model.predict(x, batch_size=1024, verbose=0).argmax(1) == y).mean())


def throughput() -> tuple[list[list], list[dict]]:
    """Images/s of each architecture, steady state (second epoch), 19,000 training images."""
    data = ["data.train_limit=20000", "data.val_size=1000"]
    paths, _ = workspace("throughput", data)
    rows, records = [], []
    for name in ARCHITECTURES:
        _, plain_times = plain_recipe(name, paths, epochs=2)
        _, fast_times = pipeline([*data, f"model={name}", "train=fast", "train.epochs=2"], paths)
        _, xla_times = (None, [float("nan")])
        if name == "seed_blog_cnn":
            _, xla_times = pipeline(
                [*data, f"model={name}", "train=fast", "train.epochs=2", "train.jit_compile=true"],
                paths,
            )
        n = 19000
        plain_rate, fast_rate = n / plain_times[-1], n / fast_times[-1]
        record = {
            "architecture": name,
            "plain_img_s": round(plain_rate),
            "pipeline_img_s": round(fast_rate),
            "speedup": round(fast_rate / plain_rate, 2),
            "plain_epoch_s_full": round(55000 / plain_rate, 1),
            "pipeline_epoch_s_full": round(55000 / fast_rate, 1),
        }
        if name == "seed_blog_cnn":
            record["pipeline_xla_img_s"] = round(n / xla_times[-1])
        records.append(record)
        rows.append(
            [
                name,
                record["plain_img_s"],
                record["pipeline_img_s"],
                f"{record['speedup']:.2f}x",
                record["plain_epoch_s_full"],
                record["pipeline_epoch_s_full"],
            ]
        )
    return rows, records


def equal_epochs_accuracy() -> dict:
    """seed_blog_cnn, full MNIST, 5 epochs each: plain recipe vs pipeline's fast path."""
    paths, _ = workspace("full", [])
    plain_model, plain_times = plain_recipe("seed_blog_cnn", paths, epochs=5)
    summary, fast_times = pipeline(["train=fast", "train.epochs=5"], paths)
    fast_model = models.load(paths.model_file)
    return {
        "epochs": 5,
        "plain_test_accuracy": round(test_accuracy(plain_model, paths), 4),
        "plain_train_s": round(sum(plain_times), 1),
        "pipeline_test_accuracy": round(test_accuracy(fast_model, paths), 4),
        "pipeline_train_s": summary["train_time_s"],
    }


def time_to_99() -> dict:
    """The fastest preset, `experiment=fast`, on full MNIST: training wall time and accuracy."""
    paths, _ = workspace("full", [])
    summary, _ = pipeline(["experiment=fast"], paths)
    cfg = compose(REPO / "conf", ["experiment=fast"])
    return {
        "preset": "experiment=fast",
        "model": cfg.model.name,
        "epochs": cfg.train.epochs,
        "train_wall_s": summary["train_time_s"],
        "test_accuracy": round(test_accuracy(models.load(paths.model_file), paths), 4),
        "summary": json.loads(json.dumps(summary)),
    }
