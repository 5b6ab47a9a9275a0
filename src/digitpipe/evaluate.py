"""Stage evaluate: test-set metrics, confusion matrix, classification report, worst mistakes."""

from __future__ import annotations

import json

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

from digitpipe import dataset, models, plots, tracking
from digitpipe.paths import Paths
from digitpipe.stage import run_stage

DIGITS = list(range(10))


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


def worst_mistakes(x, y_true, probs, n: int = 32):
    """Wrong predictions the model was most sure of: (images, captions)."""
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    order = wrong[np.argsort(-probs[wrong, y_pred[wrong]])][:n]
    captions = [f"true {y_true[i]} → {y_pred[i]} ({probs[i, y_pred[i]]:.2f})" for i in order]
    return x[order], captions


def run(cfg: DictConfig, paths: Paths) -> dict:
    x_test, y_test = dataset.load(paths.prepared_dir, "test")
    model = models.load(paths.model_file)
    probs = model.predict(x_test, batch_size=512, verbose=0)
    metrics, report, matrix = score(y_test, probs)

    out = paths.evaluate_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"test": metrics}, indent=2) + "\n")
    (out / "classification_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "classification_report.txt").write_text(
        classification_report(y_test, probs.argmax(1), labels=DIGITS, digits=4, zero_division=0)
    )
    per_class = pd.DataFrame({d: report[str(d)] for d in DIGITS}).T.rename_axis("digit")
    per_class.to_csv(out / "per_class.csv")
    pd.DataFrame({"actual": y_test, "predicted": probs.argmax(1)}).to_csv(
        out / "confusion.csv", index=False
    )
    pd.DataFrame(matrix, index=DIGITS, columns=DIGITS).rename_axis("actual").to_csv(
        out / "confusion_matrix.csv"
    )
    heatmap = plots.confusion_heatmap(
        matrix, out / "confusion_matrix.png", f"{cfg.model.name}: test confusion matrix"
    )
    images, captions = worst_mistakes(x_test, y_test, probs)
    gallery = plots.digit_grid(
        images, captions, out / "mistakes.png", f"Most confident mistakes ({len(captions)} shown)"
    )

    with tracking.resume_pipeline_run(cfg, paths) as run:
        tracking.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        tracking.log_metrics({f"test_f1_digit_{d}": report[str(d)]["f1-score"] for d in DIGITS})
        tracking.log_metrics({f"test_recall_digit_{d}": report[str(d)]["recall"] for d in DIGITS})
        tracking.log_files(
            out / "metrics.json",
            out / "classification_report.txt",
            out / "classification_report.json",
            out / "per_class.csv",
            out / "confusion.csv",
            out / "confusion_matrix.csv",
            heatmap,
            gallery,
            folder="evaluate",
        )
        model_uri = tracking.recorded_model_uri(paths)
        if cfg.mlflow.registered_model and model_uri:
            version, promoted = tracking.register_and_promote(
                cfg.mlflow.registered_model,
                model_uri,
                metrics["accuracy"],
                model.count_params(),
                run.info.run_id,
            )
            verdict = "now champion" if promoted else "champion unchanged"
            print(f"evaluate: registered {cfg.mlflow.registered_model} v{version} ({verdict})")
    print(
        f"evaluate: test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f},"
        f" loss {metrics['loss']:.4f} on {len(y_test)} images"
    )
    return metrics


if __name__ == "__main__":
    run_stage(run)
