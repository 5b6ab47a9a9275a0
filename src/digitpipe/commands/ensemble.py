"""Average several trained models into one: an ordinary Keras model (one .keras file, one
MLflow logged model, one registry version), so predict-scans and the registry take it as it is.

    python -m digitpipe.commands.ensemble --top 3          # the 3 best registered versions
    python -m digitpipe.commands.ensemble --models models:/digit-classifier/4 a/model.keras

Members are chosen on validation accuracy (`--top` ranks registry versions by the tag every
evaluated version carries); the ensemble is scored on the validation and the test split of the
prepared data, logged as a run of its own and registered: it becomes champion only if its
validation accuracy beats the champion's. So every member must have been trained on that
split (params.yaml's data.val_size, split_seed and train_limit), and no model may count twice,
alone and inside an earlier ensemble: both are refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from digitpipe import models, tracking
from digitpipe.config import load_params
from digitpipe.errors import UserError, cli
from digitpipe.mnist import splits
from digitpipe.paths import Paths
from digitpipe.stages.evaluate import score

if TYPE_CHECKING:
    from omegaconf import DictConfig


def member_uri(paths: Paths, given: str) -> str:
    """A member as it is recorded: a .keras file by its full path (meaningful from anywhere,
    and a.keras and ./a.keras are one file), an alias as the version it points at now."""
    if Path(given).suffix != ".keras":
        return tracking.pinned_model_uri(given)
    path = paths.resolve_user_path(given)
    if not path.is_file():
        raise UserError(f"--models: {given}: no such file")
    return str(path.resolve())


def load_member(cfg: DictConfig, paths: Paths, uri: str) -> keras.Model:
    if Path(uri).suffix == ".keras":
        return models.load(Path(uri))
    return tracking.load_keras_model(cfg, paths, uri, key="--models")


def check_members(behind: dict[str, list[tracking.TrainedModel]], split: dict[str, str]) -> None:
    """The ensemble is fair only if no trained model counts twice (alone and inside an earlier
    ensemble, or in two) and each was trained on the split it is scored on: params.yaml's, the
    split of data/prepared. A member whose split is not recorded (a .keras file) gets a note."""
    seen: dict[str, tuple[str, str]] = {}  # a trained model: (given as, its own URI)
    unknown = []
    for given, trained in behind.items():
        for model in trained:
            if model.identity in seen:
                raise UserError(f"--models: {twice(seen[model.identity], (given, model.uri))}")
            seen[model.identity] = (given, model.uri)
            if model.split is None:
                unknown.append(model.uri)
                continue
            other = {k: v for k, v in model.split.items() if v != split[k]}
            if other:
                theirs = ", ".join(f"{k}={v}" for k, v in other.items())
                here = ", ".join(f"{k}={split[k]}" for k in other)
                raise UserError(
                    f"--models: {model.uri} was trained on another split ({theirs}; params.yaml: "
                    f"{here}): data/prepared's validation images may be its training images"
                )
    if unknown:
        one = len(unknown) == 1
        here = ", ".join(f"{k}={v}" for k, v in split.items())
        print(
            f"note: {', '.join(unknown)}: {'its split is' if one else 'their splits are'} not "
            f"recorded; the validation score is fair only if {'it was' if one else 'they were'} "
            f"trained on this one ({here})"
        )


def twice(first: tuple[str, str], second: tuple[str, str]) -> str:
    """Where one trained model was found twice, each place as (given as, its own URI)."""
    alone = [uri for given, uri in (first, second) if given == uri]
    inside = [given for given, uri in (first, second) if given != uri]
    if len(alone) == 2:
        where = f"{alone[0]} and {alone[1]} are one model"
    elif alone:
        where = f"{alone[0]} is given alone and inside {inside[0]}"
    else:
        where = f"{second[1]} is inside both {inside[0]} and {inside[1]}"
    return f"{where}: it would weigh double"


def average(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the members' class probabilities (in float32,
    whatever precision each member was trained in)."""
    inputs = keras.Input(members[0].input_shape[1:], name="image")
    outputs = []
    for k, member in enumerate(members):
        member.name = f"member_{k}_{member.name}"
        outputs.append(keras.layers.Activation("linear", dtype="float32")(member(inputs)))
    mean = keras.layers.Average(name="mean_probabilities")(outputs)
    return keras.Model(inputs, mean, name=f"ensemble_of_{len(members)}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument(
        "--models",
        nargs="+",
        help="model URIs (models:/name/4, models:/name@alias, runs:/<run id>/<architecture>) "
        "or .keras files",
    )
    chosen.add_argument("--top", type=int, help="the N best registered versions by validation")
    args = parser.parse_args(argv)
    paths = Paths.here()
    cfg = load_params(paths.params_file)
    registered = cfg.mlflow.registered_model
    if args.models is not None and len(args.models) < 2:
        raise UserError("--models: an ensemble needs at least 2 models")
    if args.top is not None and (args.top < 2 or not registered):
        raise UserError(f"--top {args.top}: needs >= 2 and mlflow.registered_model set")
    tracking.configure(cfg, paths)
    split = tracking.split_of(cfg)
    if args.models:  # an alias as the version it points at now, a file by its full path:
        uris = [member_uri(paths, uri) for uri in args.models]  # what was averaged stays known
    else:
        uris = tracking.best_versions(registered, args.top, split)
    repeated = sorted({u for u in uris if uris.count(u) > 1})
    if repeated:
        raise UserError(f"--models: {repeated[0]} given twice: it would weigh double")
    if len(uris) < 2 or (args.top is not None and len(uris) < args.top):
        found = f"{len(uris)} trained version" + ("" if len(uris) == 1 else "s")
        raise UserError(f"--top {args.top}: only {found} of {registered!r} on this data split")
    check_members({uri: tracking.trained_models(uri) for uri in uris}, split)
    (x_val, y_val), (x_test, y_test) = (splits.load(paths.prepared_dir, s) for s in ("val", "test"))
    if not len(y_val):
        raise UserError("data.val_size=0: choosing a champion needs a validation split")
    if len(y_val) != cfg.data.val_size:  # the split the members were checked against
        raise UserError(
            f"data/prepared holds {len(y_val)} validation images, params.yaml's data.val_size is "
            f"{cfg.data.val_size}: run `dvc repro prepare` first"
        )
    ensemble = average([load_member(cfg, paths, uri) for uri in uris])  # after the cheap checks
    val, _, _ = score(y_val, ensemble.predict(x_val, batch_size=1024, verbose=0))
    test, _, _ = score(y_test, ensemble.predict(x_test, batch_size=1024, verbose=0))

    out = paths.ensemble_dir
    out.mkdir(parents=True, exist_ok=True)
    ensemble.save(out / "model.keras")
    result = {"members": uris, "val_accuracy": val["accuracy"], "test": test}
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    tags = {"architecture": ensemble.name, "members": " ".join(uris)}
    with tracking.side_run(cfg, paths, ensemble.name, tags) as run:
        model_uri = tracking.log_keras_model(ensemble, x_val[:2], ensemble.name, last_epoch=0)
        metrics = {"val_accuracy_final": val["accuracy"], "parameters": ensemble.count_params()}
        metrics |= {f"test_{k}": v for k, v in test.items()}
        tracking.log_metrics(metrics, model_uri=model_uri)
        tracking.log_params(split)  # the split it was scored on, as a pipeline run's
        tracking.log_files(out / "metrics.json", folder="ensemble")
        verdict = ""
        if registered:
            version, verdict = tracking.register_and_promote(
                paths, registered, model_uri,
                {"val_accuracy": val["accuracy"], "test_accuracy": test["accuracy"]},
                ensemble.count_params(), run.info.run_id, split=split, members=uris,
            )  # fmt: skip
            result |= {"version": version, "champion": verdict == "now champion"}
    print(
        f"ensemble: {len(uris)} models, validation {val['accuracy']:.2%}, test "
        f"{test['accuracy']:.2%}; saved {out / 'model.keras'}"
        + (f", registered v{result['version']} ({verdict})" if "version" in result else "")
    )
    return result


if __name__ == "__main__":
    cli(main)()
