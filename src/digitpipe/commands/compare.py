"""Compare pipeline runs from MLflow: which architecture, trained how long, is best?

    python -m digitpipe.commands.compare             # every run of the configured experiment
    python -m digitpipe.commands.compare --sweep 2026-11-21_17-50-00-1234 --format markdown

Writes reports/compare/ (report.md, runs.csv, three PNG plots); with --sweep, also logs the
report to the sweep's parent run. Runs are ranked by validation accuracy (then fewest params)
and the best is marked with ★: the test set is reported, never used to choose.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from digitpipe import plots, tracking
from digitpipe.config import load_params
from digitpipe.errors import UserError, cli
from digitpipe.paths import Paths

COLUMNS = {
    "architecture": "architecture",
    "epochs": "epochs",
    "params": "params",
    "train_time_s": "train time (s)",
    "val_accuracy": "val accuracy",
    "val_images": "val images",
    "test_accuracy": "test accuracy",
    "test_macro_f1": "macro F1",
    "scan_accuracy": "scan accuracy",
    "run_id": "run id",
}
COLUMNS_KEY = {v: k for k, v in COLUMNS.items()}


def runs_table(runs: list, source: str = "the experiment") -> pd.DataFrame:
    """One row per finished run, best first; per-class recall kept for the heatmap."""
    rows = []
    for run in runs:
        m, p, t = run.data.metrics, run.data.params, run.data.tags
        if "test_accuracy" not in m:
            continue  # still running, or failed before evaluate
        rows.append(
            {
                "run_name": run.info.run_name,
                "architecture": t.get("architecture", "?"),
                "epochs": int(p.get("train.epochs", t.get("epochs", 0))),
                "params": int(m.get("parameters", 0)),
                "train_time_s": m.get("train_time_s"),
                "val_accuracy": m.get("val_accuracy_final", float("nan")),
                "test_accuracy": m["test_accuracy"],
                "test_macro_f1": m.get("test_macro_f1"),
                "scan_accuracy": m.get("scan_accuracy"),
                "run_id": run.info.run_id,
                "val_images": int(p["data.val_size"]) if "data.val_size" in p else None,
                "split": tracking.split_text(p) if set(tracking.SPLIT_KEYS) & set(p) else "",
                **{f"recall_{d}": m.get(f"test_recall_digit_{d}") for d in range(10)},
            }
        )
    if not rows:
        raise UserError(f"compare: {source} has no evaluated runs yet")
    table = pd.DataFrame(rows).sort_values(
        ["val_accuracy", "params"], ascending=[False, True], ignore_index=True
    )
    # the best of each split: accuracies on other validation images do not compare
    table.loc[table["split"] == "", "split"] = main_split(table)
    table.insert(0, "best", "")
    ranked = table[table["val_accuracy"].notna()]  # no validation split: nothing to rank by
    table.loc[ranked.groupby("split", sort=False).head(1).index, "best"] = "★"
    return table


def main_split(table: pd.DataFrame) -> str:
    """The split of the most runs (ties: the larger validation set): where a run whose split is
    not recorded (an older ensemble) is compared."""
    known = table[table["split"] != ""]
    if known.empty:
        return ""
    counts = known.groupby("split").agg(runs=("split", "size"), images=("val_images", "max"))
    return str(counts.fillna(0).sort_values(["runs", "images"], ascending=False).index[0])


def best_run(table: pd.DataFrame) -> pd.Series:
    """The report's best: the ★ on the largest validation set when runs used several splits."""
    starred = table[table["best"] == "★"]
    if starred.empty:
        return table.iloc[0]
    size = table.groupby("split")["val_images"].transform("max").fillna(0)
    return starred.loc[size[starred.index].idxmax()]


def splits_note(table: pd.DataFrame) -> str:
    """A line when the runs were validated on more than one split, else ''."""
    count = table["split"].nunique()
    if count < 2:
        return ""
    return (
        f"note: these runs were validated on {count} different splits (see val images): ★ "
        "marks the best of each, as their accuracies do not compare; the plots show the best's"
    )


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The report's columns with readable numbers."""
    shown = table[["best", *COLUMNS]].rename(columns=COLUMNS | {"best": ""})
    for col in ("val accuracy", "test accuracy", "macro F1", "scan accuracy"):
        shown[col] = table[COLUMNS_KEY[col]].map(lambda v: "-" if pd.isna(v) else f"{v:.2%}")
    shown["train time (s)"] = table["train_time_s"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    shown["params"] = table["params"].map("{:,}".format)
    shown["val images"] = table["val_images"].map(lambda v: "-" if pd.isna(v) else f"{int(v):,}")
    shown["run id"] = table["run_id"].str[:12]
    return shown


def render(table: pd.DataFrame, fmt: str) -> str:
    shown = formatted(table)
    if fmt == "csv":
        recalls = [c for c in table if c.startswith("recall_")]
        return table.drop(columns=recalls).to_csv(index=False)
    if fmt == "markdown":
        return shown.to_markdown(index=False)
    return shown.to_string(index=False)


def write_report(table: pd.DataFrame, out: Path, title: str) -> list:
    out.mkdir(parents=True, exist_ok=True)
    best = best_run(table)
    summary = (
        f"# {title}\n\n**Best:** {best['architecture']}, {best['epochs']} epoch"
        f"{'' if best['epochs'] == 1 else 's'}: "
        f"{best['val_accuracy']:.2%} validation accuracy, "
        f"{best['test_accuracy']:.2%} test accuracy (run {best['run_id']}).\n\n"
    )
    note = splits_note(table)
    (out / "report.md").write_text(
        summary + (f"{note}\n\n" if note else "") + render(table, "markdown") + "\n"
    )
    (out / "runs.csv").write_text(render(table, "csv"))
    drawn = table[table["split"] == best["split"]]  # the plots rank too: the best's split only
    return [
        out / "report.md",
        out / "runs.csv",
        plots.accuracy_vs_epochs(drawn, out / "accuracy_vs_epochs.png"),
        plots.accuracy_vs_time(drawn, out / "accuracy_vs_time.png"),
        plots.per_class_error(drawn, out / "per_class_error.png"),
    ]


@cli
def main() -> None:
    parser = argparse.ArgumentParser(description="Compare pipeline runs recorded in MLflow.")
    parser.add_argument("--experiment", help="MLflow experiment (default: mlflow.experiment_name)")
    parser.add_argument(
        "--sweep",
        help="only the runs of this sweep (its id, 2026-11-21_17-50-00-1234, or its folder, "
        "multirun/2026-11-21/17-50-00-1234); logs to its parent run",
    )
    parser.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    args = parser.parse_args()
    paths = Paths.here()
    cfg = load_params(paths.params_file)
    tracking.configure(cfg, paths)
    experiment = args.experiment or cfg.mlflow.experiment_name
    parent = None
    if args.sweep:  # its id, or its folder
        args.sweep = tracking.resolve_sweep(args.sweep)
        parent = tracking.sweep_parent_run(experiment, args.sweep)
    source = f"sweep {args.sweep}" if args.sweep else f"experiment {experiment!r}"
    table = runs_table(tracking.find_runs(experiment, sweep_id=args.sweep), source)
    title = f"Runs of {args.sweep or experiment}"
    files = write_report(table, paths.compare_dir, title)
    if parent:
        tracking.log_to_sweep_parent(parent, files, "compare")
    print(render(table, args.format))
    if note := splits_note(table):
        print(f"\n{note}")
    print(f"\nreport: {paths.compare_dir}/report.md")


if __name__ == "__main__":
    main()
