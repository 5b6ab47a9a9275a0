"""PNG figures: training curves, confusion heatmap, galleries of digits.

Galleries are drawn as one picture (a mosaic of the cells) with a caption over each cell: a grid
of small matplotlib axes cost about 3 s per gallery on a 2-core CPU, one picture a fraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

if TYPE_CHECKING:
    import keras
    from matplotlib.figure import Figure

DPI = 110
PAPER = 255  # the background of galleries: white


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def training_curves(history_csv: Path, path: Path) -> Path:
    """Loss and accuracy per epoch, train vs validation."""
    history = pd.read_csv(history_csv)
    epochs = history["epoch"]  # 0-based, as in history.csv, DVC plots and MLflow's steps
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(xlabel="epoch (0 = first)", ylabel=metric, title=metric)
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


def _gray8(image: np.ndarray) -> np.ndarray:
    """uint8 gray: model inputs in [0, 1] scaled to 0..255, colour averaged."""
    image = np.squeeze(image)
    if image.ndim == 3:
        image = image.mean(axis=2)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return image


def _fit(image: np.ndarray | None, box: tuple[int, int], crisp: bool) -> np.ndarray:
    """Scaled to fit `box` (width, height), aspect kept, centred on paper. `crisp` keeps
    a model input's pixels square and its values; pictures are resampled smoothly and
    stretched to full contrast (as matplotlib shows a lone picture)."""
    if image is None:
        return np.full(box[::-1], PAPER, np.uint8)
    picture = Image.fromarray(_gray8(image))
    if not crisp:
        picture = ImageOps.autocontrast(picture)
    method = Image.Resampling.NEAREST if crisp else Image.Resampling.LANCZOS
    return np.asarray(ImageOps.pad(picture, box, method, PAPER))


def _mosaic(
    cells: Sequence[np.ndarray], captions: Sequence[str], title: str, cols: int,
    caption_lines: int = 1, fontsize: float = 7, scale: float = 4.0,
    colours: Sequence[str] | None = None,
) -> Figure:  # fmt: skip
    """Equal-sized uint8 cells in rows of `cols`, each under its caption, as one image.
    `scale`: screen pixels per cell pixel."""
    height, width = cells[0].shape if cells else (28, 28)
    gap = max(2, width // 16)
    caption_px = int(np.ceil(caption_lines * fontsize * 1.35 / 72 * DPI / scale)) + 1
    rows = max((len(cells) + cols - 1) // cols, 1)
    pitch_x, pitch_y = width + gap, caption_px + height + gap
    canvas = np.full((rows * pitch_y, cols * pitch_x - gap), PAPER, np.uint8)
    for k, cell in enumerate(cells):
        top, left = (k // cols) * pitch_y + caption_px, (k % cols) * pitch_x
        canvas[top : top + height, left : left + width] = cell
    inches = np.array(canvas.shape[::-1]) * scale / DPI
    fig = plt.figure(figsize=(inches[0], inches[1] + 0.4))
    ax = fig.add_axes((0, 0, 1, inches[1] / (inches[1] + 0.4)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    for k, caption in enumerate(captions):
        x, y = (k % cols) * pitch_x, (k // cols) * pitch_y + caption_px - 0.5
        colour = colours[k] if colours is not None else "black"
        ax.text(x, y, caption, fontsize=fontsize, color=colour, va="bottom", ha="left")
    fig.suptitle(title, fontsize=10, y=1.0, va="top")
    return fig


def digit_grid(
    images: Sequence[np.ndarray], captions: Sequence[str], path: Path, title: str, cols: int = 8
) -> Path:
    """A grid of 28x28 digits (white on black, like MNIST) with a caption over each."""
    cells = [_gray8(image) for image in images]
    return _save(_mosaic(cells, captions, title, cols, scale=4.2), path)


def scan_gallery(items: Sequence, path: Path, title: str, cols: int = 4) -> Path:
    """Per scan: the original picture, the normalised 28x28 input(s), and the caption."""
    cells = []
    captions = []
    for item in items:
        picture = _fit(item.thumbnail, (96, 64), crisp=False)
        inputs = _fit(item.inputs, (64, 64), crisp=True)
        cells.append(np.hstack([picture, np.full((64, 6), PAPER, np.uint8), inputs]))
        captions.append(cell_caption(item.caption))
    return _save(_mosaic(cells, captions, title, cols, caption_lines=2, scale=1.9), path)


def cell_caption(caption: str, name_chars: int = 24, reading_chars: int = 30) -> str:
    """A scan's two caption lines cut to its gallery cell: a long file name keeps its end (the
    number in it), a long reading its start (the reading and the label); a cut shows as …."""
    name, _, reading = caption.partition("\n")
    name = name if len(name) <= name_chars else "…" + name[1 - name_chars :]
    reading = reading if len(reading) <= reading_chars else reading[: reading_chars - 1] + "…"
    return f"{name}\n{reading}"


def chosen_per_epochs(table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and epochs, the run with the best validation accuracy (test accuracy is
    reported, never chosen by). Ensembles, which train no epochs, are left out."""
    trained = table[table["epochs"] >= 1].fillna({"val_accuracy": -1.0})
    picked = trained.groupby(["architecture", "epochs"])["val_accuracy"].idxmax()
    return trained.loc[picked].sort_values("epochs")


def accuracy_vs_epochs(table: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against epochs, one line per architecture (see `chosen_per_epochs`)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, group in chosen_per_epochs(table).groupby("architecture"):
        ax.plot(group["epochs"], group["test_accuracy"] * 100, marker="o", label=name)
    ax.set(xlabel="epochs", ylabel="test accuracy (%)", title="Test accuracy vs epochs")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def accuracy_vs_time(table: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against training time; the best trained run is ringed (an ensemble has no
    training time of its own)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    table = table[table["train_time_s"].notna()]
    for name, group in table.groupby("architecture"):
        ax.scatter(group["train_time_s"], group["test_accuracy"] * 100, label=name)
    for _, top in table.head(1).iterrows():
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


def model_diagram(model: keras.Model, path: Path) -> Path:
    """The network as a column of boxes, input to output: layer, output shape, parameters.
    Monospaced columns sized by their longest entry, so no name runs into a shape."""
    layers = [("Input", str((None, *model.input_shape[1:])), "0")] + [
        (f"{layer.name} ({type(layer).__name__})", str(layer.output.shape),
         f"{layer.count_params():,}")
        for layer in model.layers
    ]  # fmt: skip
    widths = [max(len(row[c]) for row in layers) for c in range(3)]
    gap, char_in = 3, 8 * 0.6 / 72  # 8 pt monospace: 0.6 em per character
    columns = np.cumsum([2, widths[0] + gap, widths[1] + gap]) * char_in
    width = (sum(widths) + 2 * gap + 4) * char_in
    width, height = max(width, 5.0), 0.42 * len(layers) + 0.8
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 0.35 / height)  # 1 data unit = 1 in
    ax.set(xlim=(0, width), ylim=(len(layers) - 0.4, -0.6))
    ax.axis("off")
    for i, (name, shape, params) in enumerate(layers):
        colour = "#dbe8f6" if params != "0" else "#eeeeee"
        box = matplotlib.patches.FancyBboxPatch(
            (char_in, i - 0.3), width - 2 * char_in, 0.6,
            boxstyle="round,pad=0.02", fc=colour, ec="#4a6a8a",
        )  # fmt: skip
        ax.add_patch(box)
        style = {"va": "center", "fontsize": 8, "family": "monospace"}
        ax.text(columns[0], i, name, weight="bold", **style)
        ax.text(columns[1], i, shape, **style)
        ax.text(columns[2] + widths[2] * char_in, i, params, ha="right", **style)
        if i:
            middle = width / 2
            ax.annotate("", (middle, i - 0.31), (middle, i - 0.69), arrowprops={"arrowstyle": "->"})
    ax.set_title(f"{model.name}: {model.count_params():,} parameters "
                 "(layer, output shape, parameters)", fontsize=9)  # fmt: skip
    return _save(fig, path)


def prediction_grid(
    images: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    path: Path,
    title: str,
    cols: int = 5,
) -> Path:
    """Random test digits, each titled 'True: x / Pred: y' (mistakes in red)."""
    captions = [f"True: {t} / Pred: {p}" for t, p in zip(y_true, y_pred, strict=True)]
    colours = ["black" if t == p else "red" for t, p in zip(y_true, y_pred, strict=True)]
    cells = [_gray8(image) for image in images]
    fig = _mosaic(cells, captions, title, cols, fontsize=8, scale=5.0, colours=colours)
    return _save(fig, path)


def true_vs_predicted(y_true: np.ndarray, y_pred: np.ndarray, path: Path, title: str) -> Path:
    """Per sample: the true digit (blue o) and the predicted one (red x)."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    index = np.arange(len(y_true))
    ax.scatter(index, y_true, marker="o", facecolors="none", edgecolors="blue", label="true")
    ax.scatter(index, y_pred, marker="x", color="red", label="predicted")
    ax.set(xlabel="test sample", ylabel="digit", yticks=range(10), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", ncols=2)
    return _save(fig, path)
