"""Prepared arrays on disk: split MNIST into train/val/test and read them back.

Stored at their natural size (uint8, 28x28: a quarter of float32) and scaled to [0, 1] as they
are loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from digitpipe.errors import UserError

SPLITS = ("train", "val", "test")


def stratified_subset(
    x: np.ndarray, y: np.ndarray, n: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples with the class mix of `y` (all of them when n is None or too large)."""
    if n is None or n >= len(y):
        return x, y
    x_keep, _, y_keep, _ = train_test_split(x, y, train_size=n, stratify=y, random_state=seed)
    return x_keep, y_keep


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) / np.float32(255.0))[..., np.newaxis]


def split(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    val_size: int,
    seed: int,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified validation split of the training set; the test set stays untouched."""
    x, y = stratified_subset(train_images, train_labels, train_limit, seed)
    if val_size >= len(y):
        raise UserError(
            f"config: data.val_size={val_size} is invalid: must be < the {len(y)} training images"
        )
    x_test, y_test = stratified_subset(test_images, test_labels, test_limit, seed)
    if val_size > 0:
        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=val_size, stratify=y, random_state=seed
        )
    else:
        x_train, y_train = x, y
        x_val, y_val = x[:0], y[:0]
    return {
        "train": (x_train.astype(np.uint8), y_train.astype(np.uint8)),
        "val": (x_val.astype(np.uint8), y_val.astype(np.uint8)),
        "test": (x_test.astype(np.uint8), y_test.astype(np.uint8)),
    }


def class_counts(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, int]]:
    return {
        name: {str(d): int((y == d).sum()) for d in range(10)} | {"total": int(len(y))}
        for name, (_, y) in splits.items()
    }


def file(folder: Path, name: str) -> Path:
    """Where split `name` (train, val, test) lies in a prepared-data folder."""
    return folder / f"{name}.npz"


def save(folder: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in splits.items():
        tmp = folder / f".{name}.{os.getpid()}.tmp.npz"  # parallel jobs may write at once
        np.savez(tmp, x=x, y=y)
        tmp.replace(file(folder, name))
    counts = folder / f".class_counts.{os.getpid()}.tmp"
    counts.write_text(json.dumps(class_counts(splits), indent=2) + "\n")
    counts.replace(folder / "class_counts.json")


def load(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 N×28×28×1 in [0,1], y uint8 N) of one split."""
    path = file(folder, name)
    if not path.is_file():
        raise UserError(f"{path}: prepared data missing (run the prepare stage: `dvc repro`)")
    with np.load(path) as npz:
        return to_model_input(npz["x"]), npz["y"]
