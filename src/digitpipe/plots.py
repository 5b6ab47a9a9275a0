"""PNG figures: training curves, confusion heatmap, galleries of digits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def training_curves(history_csv: Path, path: Path) -> Path:
    """Loss and accuracy per epoch, train vs validation."""
    history = pd.read_csv(history_csv)
    epochs = history["epoch"] + 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion_heatmap(matrix: np.ndarray, path: Path, title: str = "Confusion matrix") -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    shown = np.log1p(matrix)  # log scale: the diagonal would otherwise hide every mistake
    image = ax.imshow(shown, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if shown[i, j] > shown.max() * 0.6 else "black"
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=color)
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="actual", title=title)
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    return _save(fig, path)


def digit_grid(
    images: Sequence[np.ndarray], captions: Sequence[str], path: Path, title: str, cols: int = 8
) -> Path:
    """A grid of 28x28 digits (white on black, like MNIST) with a caption under each."""
    n = max(len(images), 1)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.55), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        ax.imshow(np.squeeze(image), cmap="gray", vmin=0, vmax=1)
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def scan_gallery(
    rows: Sequence[tuple[np.ndarray | None, np.ndarray | None, str]], path: Path, title: str
) -> Path:
    """Per scan: the original picture, the normalised 28x28 input, and the caption."""
    n = max(len(rows), 1)
    cols = 4  # pairs per row
    grid_rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        grid_rows, cols * 2, figsize=(cols * 2.6, grid_rows * 1.5), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for k, (original, normalised, caption) in enumerate(rows):
        left, right = axes.flat[2 * k], axes.flat[2 * k + 1]
        if original is not None:
            left.imshow(original, cmap="gray" if original.ndim == 2 else None)
        if normalised is not None:
            right.imshow(np.squeeze(normalised), cmap="gray", vmin=0, vmax=1)
        left.set_title(caption, fontsize=7, loc="left")
    fig.suptitle(title)
    return _save(fig, path)


def accuracy_vs_epochs(table: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against epochs, one line per architecture (best run per point)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    best = table.groupby(["architecture", "epochs"], as_index=False)["test_accuracy"].max()
    for name, group in best.groupby("architecture"):
        ax.plot(group["epochs"], group["test_accuracy"] * 100, marker="o", label=name)
    ax.set(xlabel="epochs", ylabel="test accuracy (%)", title="Test accuracy vs epochs")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def accuracy_vs_time(table: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against training time; the best run is ringed."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, group in table.groupby("architecture"):
        ax.scatter(group["train_time_s"], group["test_accuracy"] * 100, label=name)
    top = table.iloc[0]
    ax.scatter(
        [top["train_time_s"]],
        [top["test_accuracy"] * 100],
        s=200,
        facecolors="none",
        edgecolors="red",
        label="best",
    )
    ax.set(xlabel="training time (s)", ylabel="test accuracy (%)", title="Accuracy vs time")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def per_class_error(table: pd.DataFrame, path: Path) -> Path:
    """Per-digit error rate (1 - recall) of each run: which digits each model gets wrong."""
    recall = table[[f"recall_{d}" for d in range(10)]].astype(float).to_numpy()
    errors = (1 - recall) * 100
    labels = [f"{r.run_name} ({r.run_id[:6]})" for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(labels) + 1.6))
    image = ax.imshow(errors, cmap="Reds", aspect="auto")
    for (i, j), value in np.ndenumerate(errors):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7)
    ax.set(
        xticks=range(10),
        yticks=range(len(labels)),
        xlabel="digit",
        title="Test error per digit (%)",
    )
    ax.set_yticklabels(labels, fontsize=7)
    fig.colorbar(image, ax=ax, label="error %")
    return _save(fig, path)
