"""The comparison report's plots choose runs as the pipeline does: by validation accuracy."""

from types import SimpleNamespace

import pandas as pd

from digitpipe.plots import chosen_per_epochs


def test_each_point_of_accuracy_vs_epochs_is_the_run_with_the_best_validation_accuracy():
    table = pd.DataFrame(
        {
            "architecture": ["lenet5", "lenet5", "lenet5", "ensemble_of_2"],
            "epochs": [2, 2, 4, 0],
            "val_accuracy": [0.990, 0.980, 0.991, 0.995],
            "test_accuracy": [0.985, 0.992, 0.989, 0.996],  # the best test run is not chosen
            "run_id": ["a", "b", "c", "e"],
        }
    )
    chosen = chosen_per_epochs(table)
    assert chosen["run_id"].tolist() == ["a", "c"]  # ensembles train no epochs: left out


def fake_run(run_id: str, val: float, val_size: str | None) -> SimpleNamespace:
    params = {"train.epochs": "1"}
    if val_size is not None:
        params |= {"data.val_size": val_size, "data.split_seed": "42", "data.train_limit": "None"}
    return SimpleNamespace(
        info=SimpleNamespace(run_name=run_id, run_id=run_id),
        data=SimpleNamespace(
            metrics={"test_accuracy": 0.99, "val_accuracy_final": val, "parameters": 100},
            params=params,
            tags={"architecture": "fast_cnn"},
        ),
    )


def test_runs_validated_on_other_splits_are_starred_apart_and_said(tmp_path):
    """100 % of 20 validation images is not better than 99.5 % of 5,000: the report stars the
    best of each split, says so, and names the best on the largest validation set."""
    from digitpipe.commands.compare import runs_table, splits_note, write_report

    runs = [fake_run("a", 0.990, "5000"), fake_run("tiny", 1.0, "20"),
            fake_run("c", 0.995, "5000"), fake_run("ensemble", 0.996, None)]  # fmt: skip
    table = runs_table(runs)
    assert list(table["run_id"]) == ["tiny", "ensemble", "c", "a"]
    assert list(table["best"]) == ["★", "★", "", ""]  # the ensemble joins the most runs' split
    assert splits_note(table).startswith("note: these runs were validated on 2 different splits")
    write_report(table, tmp_path, "Runs")
    assert "(run ensemble)" in (tmp_path / "report.md").read_text().split("\n\n")[1]
    one_split = runs_table([fake_run("a", 0.990, "5000"), fake_run("c", 0.995, "5000")])
    assert list(one_split["best"]) == ["★", ""] and splits_note(one_split) == ""


def test_a_run_without_a_split_joins_the_larger_of_tied_splits_and_no_score_no_star():
    from digitpipe.commands.compare import runs_table

    runs = [fake_run("tiny", 1.0, "20"), fake_run("big", 0.99, "5000"),
            fake_run("ensemble", 0.995, None), fake_run("noval", float("nan"), "0")]  # fmt: skip
    table = runs_table(runs)
    stars = dict(zip(table["run_id"], table["best"], strict=True))
    assert stars == {"tiny": "★", "ensemble": "★", "big": "", "noval": ""}
