"""The comparison report's plots choose runs as the pipeline does: by validation accuracy."""

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
