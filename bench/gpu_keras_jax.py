"""The frontier presets' recipes on a GPU machine that has JAX but no TensorFlow (the GPU machine
lent to development sessions: its image holds JAX and PyTorch, and TensorFlow's wheel is too
large to carry there). Not the pipeline: the same layer lists (conf/model), optimizer, schedule
and data split as stages/train.py, trained by Keras 3 on JAX. Not part of `make bench`.

    KERAS_BACKEND=jax PYTHONPATH=src python bench/gpu_keras_jax.py [--data mnist.npz] [--tiny]

`--data`: one .npz with {train,val,test}_{x,y} (default: data/prepared/*.npz, written by
`dvc repro prepare`). Prints one JSON line per run: seeds, policy, epoch times, accuracies.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import jax
import keras
import numpy as np
from omegaconf import OmegaConf

from digitpipe import models, precision

FAST = {  # conf/experiment/fast.yaml
    "arch": "fast_cnn", "epochs": 1, "batch": 128, "lr": 0.01, "warmup_epochs": 0.3,
    "warmup_start": 0.04, "adam": {"beta_1": 0.7, "beta_2": 0.9},
}  # fmt: skip
BEST = {"arch": "digitnet", "epochs": 15, "batch": 128, "lr": 0.003, "warmup_epochs": 1.0}


def machine() -> dict:
    """The CPU's bfloat16 flags, the GPU, and what `train.mixed_precision: auto` picks here."""
    flags = precision.cpu_flags()
    gpus = [
        tuple(int(p) for p in str(d.compute_capability).split(".")[:2])
        for d in jax.devices()
        if getattr(d, "compute_capability", None)
    ]
    return {
        "cpu_bf16_flags": sorted(f for f in flags if "bf16" in f or f.startswith("amx")),
        "cores": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
        "keras": keras.__version__,
        "auto": precision.choose("auto", flags, gpus).__dict__,
        "auto_without_gpu": precision.choose("auto", flags, []).__dict__,
    }


def load(data: Path | None, tiny: bool) -> dict:
    if data is not None:
        arrays = np.load(data)
        parts = {k: (arrays[f"{k}_x"], arrays[f"{k}_y"]) for k in ("train", "val", "test")}
    else:
        parts = {}
        for k in ("train", "val", "test"):
            arrays = np.load(f"data/prepared/{k}.npz")
            parts[k] = (arrays["x"], arrays["y"])
    limit = {"train": 3000, "val": 500, "test": 1000} if tiny else {}
    return {
        k: (
            (x[: limit.get(k)].astype(np.float32) / 255.0)[..., None],
            keras.utils.to_categorical(y[: limit.get(k)], 10),
        )
        for k, (x, y) in parts.items()
    }


def schedule(lr: float, epochs: int, steps: int, warmup_epochs: float, warmup_start: float):
    """stages/train.py's cosine schedule with linear warmup, restated: that module imports
    MLflow and TensorFlow, which the GPU machine lacks."""
    warmup, total = round(warmup_epochs * steps), epochs * steps
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(lr, total)
    return keras.optimizers.schedules.CosineDecay(
        lr * warmup_start, total - warmup, warmup_target=lr, warmup_steps=warmup
    )


def train(data: dict, seed: int, policy: str, recipe: dict, augmentation: bool = True) -> dict:
    """One training; the first epoch's time includes XLA's compilation."""
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_dtype_policy(policy)
    cfg = OmegaConf.create({"model": OmegaConf.load(f"conf/model/{recipe['arch']}.yaml")})
    if not augmentation:
        cfg.model.layers = [layer for layer in cfg.model.layers if layer.type[:6] != "Random"]
    model = models.build(cfg.model)
    steps = math.ceil(len(x) / recipe["batch"])
    lr = recipe["lr"] if recipe.get("constant_lr") else schedule(
        recipe["lr"], recipe["epochs"], steps, recipe["warmup_epochs"],
        recipe.get("warmup_start", 0.1),
    )  # fmt: skip
    optimizer = models.make_optimizer("adam", lr, {"adam": recipe.get("adam", {})})
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    times: list[float] = []
    started = [0.0]
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.__setitem__(0, time.perf_counter()),
        on_epoch_end=lambda epoch, logs: times.append(time.perf_counter() - started[0]),
    )
    model.fit(x, y, batch_size=recipe["batch"], epochs=recipe["epochs"], verbose=0,
              validation_data=(xv, yv), callbacks=[timer])  # fmt: skip

    def accuracy(images, labels) -> float:
        predicted = model.predict(images, batch_size=2048, verbose=0).argmax(1)
        return round(float((predicted == labels.argmax(1)).mean()), 5)

    result = {
        "arch": recipe["arch"], "epochs": recipe["epochs"], "seed": seed, "policy": policy,
        "augmentation_layers": augmentation, "epoch_s": [round(t, 2) for t in times],
        "val_accuracy": accuracy(xv, yv), "test_accuracy": accuracy(xt, yt),
    }  # fmt: skip
    if len(times) > 1:
        result["images_per_s_after_first_epoch"] = round(len(x) * len(times[1:]) / sum(times[1:]))
    keras.backend.clear_session()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--tiny", action="store_true", help="3,000 training images: a smoke run")
    args = parser.parse_args()
    print(json.dumps(machine()), flush=True)
    data = load(args.data, args.tiny)
    runs = [(seed, "mixed_float16", FAST, True) for seed in (42, 1, 2)]
    runs += [(42, "float32", FAST, True), (42, "mixed_float16", {**FAST, "epochs": 2}, True)]
    probe = {**BEST, "constant_lr": True}  # where digitnet's time goes on JAX
    runs += [(42, "mixed_float16", {**probe, "epochs": 3}, False)]  # without its Random* layers
    runs += [(42, "mixed_float16", {**probe, "epochs": 1}, True)]  # with them: minutes on JAX
    for seed, policy, recipe, augmentation in runs:
        print(json.dumps(train(data, seed, policy, recipe, augmentation)), flush=True)


if __name__ == "__main__":
    main()
