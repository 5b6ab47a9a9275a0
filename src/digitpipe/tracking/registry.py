"""The Model Registry: every evaluated model a version, the alias 'champion' on the best.

The champion is chosen on **validation** accuracy (ties: fewer parameters); test accuracy is
stored beside it as a tag and never used to choose. Registration is done once (a retry only
repeats a call that failed before it was committed); the promotion decision is taken under a
lock shared by this clone's processes, so two parallel jobs cannot both believe they won.
That lock does not reach other machines: after a sweep, the launching process settles the
alias once more from every version's tags (`settle_champion`), so jobs on a Ray cluster end
with the right champion too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.utils import logging_utils
from omegaconf import DictConfig, OmegaConf

from digitpipe.config import SPLIT_KEYS
from digitpipe.paths import Paths
from digitpipe.tracking.store import lock_for, retry_when_locked

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
SPLIT_TAG = "split"  # on each version: the split it was validated on (see SPLIT_KEYS)


@contextlib.contextmanager
def mlflow_quiet() -> Iterator[None]:
    """MLflow's own lines off ("Registered model ... already exists. Creating a new version of
    this model...", "Created version ..."): the stage says what was registered, in one line.
    Its warnings in that call are off too (MLflow has one switch for its output); failures
    still raise."""
    was = logging_utils.MLFLOW_LOGGING_STREAM.enabled
    logging_utils.disable_logging()
    try:
        yield
    finally:
        if was:
            logging_utils.enable_logging()


def score(tags: dict[str, str]) -> tuple[float, int]:
    """A version's rank from its tags: validation accuracy, then fewer parameters."""
    return float(tags.get("val_accuracy", "-1")), -int(float(tags.get("params", "1e18")))


def better(val_accuracy: float, params: int, than: dict[str, str]) -> bool:
    """Higher validation accuracy wins; on a tie, fewer parameters."""
    return (val_accuracy, -params) > score(than)


def register_and_promote(
    paths: Paths,
    name: str,
    model_uri: str,
    scores: dict[str, float],
    params: int,
    run_id: str,
    split: dict[str, str],
    members: list[str] | None = None,
) -> tuple[str, str]:
    """Register the model as a new version of `name`, tagged with the `split` it was validated
    on; move 'champion' to it if its validation accuracy beats the current champion's on the
    same split (accuracies on other images do not compare: 100 % of 20 images would beat
    99 % of 5,000). Returns (version, verdict). An ensemble's version names its `members`, so
    that a later ensemble is not built from it."""
    client = MlflowClient()
    tags = {k: f"{v:.6f}" for k, v in scores.items()} | {"params": str(params), "run_id": run_id}
    tags[SPLIT_TAG] = split_text(split)
    if members:
        tags["members"] = " ".join(members)
    with mlflow_quiet():
        version = retry_when_locked(mlflow.register_model)(model_uri, name, tags=tags).version
    with lock_for(paths, "registry"):
        champion = current_champion(client, name)
        theirs = None if champion is None else version_split(champion)
        if not same_split(theirs, tags[SPLIT_TAG]):
            return str(version), (
                f"not compared with champion v{champion.version}: validated on another split, "
                f"{split_difference(tags[SPLIT_TAG], theirs)}"
            )
        if champion is not None and not better(scores["val_accuracy"], params, champion.tags):
            return str(version), "champion unchanged"
        retry_when_locked(client.set_registered_model_alias)(name, CHAMPION, version)
    return str(version), "now champion"


def split_text(split: dict[str, str]) -> str:
    """A split as its version tag: 'data.val_size=5000 data.split_seed=42 ...'."""
    return " ".join(f"{key}={split.get(key, 'None')}" for key in SPLIT_KEYS)


def split_values(text: str) -> dict[str, str]:
    """A split tag read back, each of SPLIT_KEYS with its value ('None' when it lacks one)."""
    given = dict(item.split("=", 1) for item in text.split() if "=" in item)
    return {key: given.get(key, "None") for key in SPLIT_KEYS}


def same_split(one: str | None, other: str | None) -> bool:
    """Whether two versions' accuracies compare: the same split, or one not recorded (versions
    of old registries, whose runs are gone)."""
    return one is None or other is None or split_values(one) == split_values(other)


def split_of(cfg: DictConfig) -> dict[str, str]:
    """The config's split settings as MLflow logs them (as text)."""
    return {key: str(OmegaConf.select(cfg, key)) for key in SPLIT_KEYS}


def split_difference(ours: str, theirs: str) -> str:
    """'data.val_size=20 here, 5000 there' for the keys that differ."""
    mine, other = split_values(ours), split_values(theirs)
    differ = [key for key in SPLIT_KEYS if mine[key] != other[key]]
    return "; ".join(f"{key}={mine[key]} here, {other[key]} there" for key in differ)


def version_split(version: ModelVersion) -> str | None:
    """The split a version was validated on: its tag, or (registered before the tag) its run's
    params; None when neither says."""
    if SPLIT_TAG in version.tags:
        return version.tags[SPLIT_TAG]
    run_id = version.tags.get("run_id") or version.run_id
    if not run_id:
        return None
    try:
        logged = retry_when_locked(MlflowClient().get_run)(run_id).data.params
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # the store did not answer: not the same as "not recorded"
        return None
    return split_text(logged) if any(key in logged for key in SPLIT_KEYS) else None


def settle_champion(name: str, split: dict[str, str] | None = None) -> str | None:
    """Point 'champion' at the best version of `name` by its tags (validation accuracy, then
    fewer parameters) among those validated on the champion's split (with no champion, or
    one whose split is not recorded, on `split`: the sweep's). Returns the version it points
    at, or None when there is none."""
    client = MlflowClient()
    versions = retry_when_locked(client.search_model_versions)(f"name = '{name}'")
    champion = current_champion(client, name)
    current = None if champion is None else str(champion.version)
    on = version_split(champion) if champion is not None else None
    if on is None and split is not None:  # no champion, or its split is not recorded
        on = split_text(split)
    scored = [v for v in versions if "val_accuracy" in v.tags and same_split(on, version_split(v))]
    if not scored:
        return current
    # a tie does not beat the champion; among tied challengers the first registered wins
    best = max(scored, key=lambda v: (score(v.tags), str(v.version) == current, -int(v.version)))
    if str(best.version) != current:
        retry_when_locked(client.set_registered_model_alias)(name, CHAMPION, best.version)
    return str(best.version)


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version the alias points at (search results do not carry aliases), or None."""
    try:
        return retry_when_locked(client.get_model_version_by_alias)(name, CHAMPION)
    except mlflow.exceptions.MlflowException as exc:
        if "locked" in str(exc):
            raise
        return None


@dataclass(frozen=True)
class TrainedModel:
    """A model an ensemble averages: its URI, the run that trained it (None for a .keras file),
    and the split it was trained on (None: not recorded)."""

    uri: str
    run_id: str | None = None
    split: dict[str, str] | None = None

    @property
    def identity(self) -> str:
        """The same trained model under two URIs (runs:/R/x and models:/name/4) is one."""
        return self.run_id or self.uri


def trained_models(uri: str, depth: int = 0) -> list[TrainedModel]:
    """The trained models behind a model URI: itself, or an ensemble's members (from its run's
    `members` tag, which every ensemble run has carried), each with its recorded split."""
    run_id = source_run_id(uri)
    if run_id is None or depth > 8:
        return [TrainedModel(uri)]
    try:
        run = retry_when_locked(MlflowClient().get_run)(run_id)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return [TrainedModel(uri)]
    if members := run.data.tags.get("members"):
        return [m for member in members.split() for m in trained_models(member, depth + 1)]
    split = {k: run.data.params[k] for k in SPLIT_KEYS if k in run.data.params}
    return [TrainedModel(uri, run_id, split or None)]


def source_run_id(uri: str) -> str | None:
    """The run that logged the model a URI names (models:/name/7, models:/<model id>,
    runs:/<run id>/...), None for a file or a model this store does not have."""
    client = MlflowClient()
    try:
        if uri.startswith("runs:/"):
            return uri.removeprefix("runs:/").split("/", 1)[0]
        name, _, version = uri.removeprefix("models:/").partition("/")
        if uri.startswith("models:/") and version.isdigit():
            found = retry_when_locked(client.get_model_version)(name, version)
            return found.tags.get("run_id") or found.run_id
        if uri.startswith("models:/m-"):
            return retry_when_locked(client.get_logged_model)(name).source_run_id
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # the store did not answer: not the same as "not recorded"
        return None
    return None


def best_versions(name: str, top: int, split: dict[str, str]) -> list[str]:
    """URIs of up to `top` versions of `name`, best first by their tags (validation accuracy,
    then fewer parameters), trained on `split`: the members an ensemble is built from. Earlier
    ensembles are left out (their members would count twice), and so are models trained on
    another split (their validation accuracy is not comparable, and data/prepared's
    validation images may be their training images)."""
    versions = retry_when_locked(MlflowClient().search_model_versions)(f"name = '{name}'")
    one_per_run = {  # a run registered twice counts once
        v.tags.get("run_id") or v.version: v
        for v in versions
        if "val_accuracy" in v.tags and "members" not in v.tags
    }
    ranked = sorted(one_per_run.values(), key=lambda v: score(v.tags))[::-1]
    chosen = []
    for version in ranked:
        uri = f"models:/{name}/{version.version}"
        trained = trained_models(uri) if len(chosen) < top else []
        if len(trained) == 1 and trained[0].uri == uri and trained[0].split == split:
            chosen.append(uri)
    return chosen
