"""Stage evaluate: test-set metrics, confusion matrix, classification report, prediction plots.

The model is also scored on the validation split: that, never the test set, decides whether
it becomes the registry's champion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    log_loss,
)

from digitpipe import models, plots, tracking
from digitpipe.mnist import splits
from digitpipe.paths import Paths
from digitpipe.stages import run_stage, tracked_stages

DIGITS = list(range(10))
SAMPLE_SEED = 0  # which random test digits the sample grid and scatter show


def score(y_true: np.ndarray, probs: np.ndarray) -> tuple[dict, dict, np.ndarray]:
    """(headline metrics, sklearn report dict, confusion matrix) for predicted probabilities."""
    y_pred = probs.argmax(axis=1)
    metrics = {
        "loss": float(log_loss(y_true, probs, labels=DIGITS)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=DIGITS)),
    }
    report = classification_report(
        y_true, y_pred, labels=DIGITS, output_dict=True, digits=4, zero_division=0
    )
    return metrics, report, confusion_matrix(y_true, y_pred, labels=DIGITS)


def worst_mistakes(
    x: np.ndarray, y_true: np.ndarray, probs: np.ndarray, n: int = 32
) -> tuple[np.ndarray, list[str]]:
    """Wrong predictions the model was most sure of: (images, captions)."""
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    order = wrong[np.argsort(-probs[wrong, y_pred[wrong]])][:n]
    captions = [f"true {y_true[i]} → {y_pred[i]} ({probs[i, y_pred[i]]:.2f})" for i in order]
    return x[order], captions


def write_tables(
    out: Path,
    scores: dict,
    report: dict,
    matrix: np.ndarray,
    y_test: np.ndarray,
    y_pred: np.ndarray,
) -> list[Path]:
    """metrics.json holds the test scores and the kept model's validation accuracy (the figure
    the champion is chosen by), so `dvc metrics show` and `make exps` show both."""
    out.mkdir(parents=True, exist_ok=True)
    shown = {"test": scores["test"]}
    if scores["val_accuracy"] is not None:
        shown["val"] = {"accuracy": scores["val_accuracy"]}
    (out / "metrics.json").write_text(json.dumps(shown, indent=2) + "\n")
    (out / "classification_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "classification_report.txt").write_text(
        classification_report(y_test, y_pred, labels=DIGITS, digits=4, zero_division=0)
    )
    per_class = pd.DataFrame({d: report[str(d)] for d in DIGITS}).T.rename_axis("digit")
    per_class.to_csv(out / "per_class.csv")
    pd.DataFrame({"actual": y_test, "predicted": y_pred}).to_csv(out / "confusion.csv", index=False)
    pd.DataFrame(matrix, index=DIGITS, columns=DIGITS).rename_axis("actual").to_csv(
        out / "confusion_matrix.csv"
    )
    names = ("metrics.json", "classification_report.txt", "classification_report.json")
    names += ("per_class.csv", "confusion.csv", "confusion_matrix.csv")
    return [out / name for name in names]


def draw_figures(
    cfg: DictConfig,
    out: Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    probs: np.ndarray,
    matrix: np.ndarray,
) -> list[Path]:
    y_pred = probs.argmax(1)
    sample = np.random.default_rng(SAMPLE_SEED).choice(len(y_test), size=50, replace=False)
    images, captions = worst_mistakes(x_test, y_test, probs)
    name = cfg.model.name
    return [
        plots.confusion_heatmap(matrix, out / "confusion_matrix.png", f"{name}: test confusion"),
        plots.digit_grid(
            images, captions, out / "mistakes.png", f"Most confident mistakes ({len(captions)})"
        ),
        plots.prediction_grid(
            x_test[sample[:20]], y_test[sample[:20]], y_pred[sample[:20]],
            out / "predictions_sample.png", f"{name}: 20 random test digits",
        ),
        plots.true_vs_predicted(
            y_test[sample], y_pred[sample], out / "true_vs_predicted.png",
            f"{name}: true (o) vs predicted (x), 50 random test samples",
        ),
    ]  # fmt: skip


def log_and_register(
    cfg: DictConfig, paths: Paths, scores: dict, report: dict, params: int
) -> None:
    """Metrics to the pipeline run, the model to the registry (champion by validation)."""
    record = tracking.read_run_file(paths)
    model_uri = record.get("model_uri")
    headline = {f"test_{k}": v for k, v in scores["test"].items()}
    if scores["val_accuracy"] is not None:
        headline["val_accuracy_final"] = scores["val_accuracy"]
    # logged once, to the run and to its model (so the UI's model tables show them)
    tracking.log_metrics(headline, model_uri=model_uri)
    tracking.log_metrics({f"test_f1_digit_{d}": report[str(d)]["f1-score"] for d in DIGITS})
    tracking.log_metrics({f"test_recall_digit_{d}": report[str(d)]["recall"] for d in DIGITS})
    if not (cfg.mlflow.registered_model and model_uri):
        return
    if scores["val_accuracy"] is None:
        print("evaluate: not registered: choosing a champion needs a validation split")
        return
    version, verdict = tracking.register_and_promote(
        paths,
        cfg.mlflow.registered_model,
        model_uri,
        {"val_accuracy": scores["val_accuracy"], "test_accuracy": scores["test"]["accuracy"]},
        params,
        record["run_id"],
        split=tracking.split_of(cfg),
    )
    print(f"evaluate: registered {cfg.mlflow.registered_model} v{version} ({verdict})")


def run(cfg: DictConfig, paths: Paths) -> dict:
    x_test, y_test = splits.load(paths.prepared_dir, "test")
    x_val, y_val = splits.load(paths.prepared_dir, "val")
    model = models.load(paths.model_file)
    probs = model.predict(x_test, batch_size=512, verbose=0)
    metrics, report, matrix = score(y_test, probs)
    val_accuracy = None
    if len(y_val):
        val_pred = model.predict(x_val, batch_size=512, verbose=0).argmax(1)
        val_accuracy = float(accuracy_score(y_val, val_pred))

    with tracking.stage_run(cfg, paths, "evaluate", tracked_stages(cfg, paths)):
        out = paths.evaluate_dir
        scores = {"test": metrics, "val_accuracy": val_accuracy}
        files = write_tables(out, scores, report, matrix, y_test, probs.argmax(1))
        files += draw_figures(cfg, out, x_test, y_test, probs, matrix)
        tracking.log_files(*files, folder="evaluate")
        log_and_register(cfg, paths, scores, report, model.count_params())
    print(
        f"evaluate: test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f},"
        f" loss {metrics['loss']:.4f} on {len(y_test)} images"
    )
    return metrics


if __name__ == "__main__":
    run_stage(run)
