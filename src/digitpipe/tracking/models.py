"""Keras models in MLflow: logged as LoggedModels of the run, loaded back by URI."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from omegaconf import DictConfig

from digitpipe.errors import UserError
from digitpipe.paths import Paths
from digitpipe.tracking.store import configure, retry_when_locked


def model_requirements() -> list[str]:
    """What the model needs to be served, pinned to this environment. Passed to MLflow so it
    need not infer them: inference loads the model again in a subprocess (about 12 s a run)."""
    pins = []
    for names in (("keras",), ("numpy",), ("tensorflow-cpu", "tensorflow")):
        for name in names:
            try:
                pins.append(f"{name}=={metadata.version(name)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return pins


def log_keras_model(model: Any, example: Any, name: str, last_epoch: int) -> str:
    """The model through the mlflow.keras flavour, named after its architecture, with a
    signature (no input example: MLflow 3.17 writes it before the model folder exists,
    mlflow/mlflow#16183). MLflow links the run's metrics of step `last_epoch` to the model, so
    its tables show the final epoch, not the first. Returns the model's URI."""
    import keras
    import mlflow
    import mlflow.keras
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example, verbose=0))
    keras.utils.disable_interactive_logging()
    try:
        info = retry_when_locked(mlflow.keras.log_model)(
            model,
            name=name,
            signature=signature,
            step=last_epoch,
            pip_requirements=model_requirements(),
        )
    finally:
        keras.utils.enable_interactive_logging()
    retry_when_locked(mlflow.set_tags)({"model_uri": info.model_uri})
    return info.model_uri


def load_keras_model(
    cfg: DictConfig, paths: Paths, model_uri: str, key: str = "scans.model_uri"
) -> Any:
    """A Keras model from MLflow (models:/name@alias, models:/<model_id>, ...); `key` names
    where the URI came from in the error a bad one gives."""
    import mlflow.keras

    configure(cfg, paths)
    try:
        return mlflow.keras.load_model(model_uri)
    except Exception as exc:  # MlflowException, OSError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{key}={model_uri!r}: cannot load model: {first}") from None


def check_model_uri(model_uri: str, key: str = "scans.model_uri") -> None:
    """That a model URI names a model, read from its MLmodel file alone (no weights loaded):
    `make exp`'s check, before DVC removes the stages' outputs."""
    from mlflow.models import get_model_info

    try:
        get_model_info(pinned_model_uri(model_uri))
    except Exception as exc:  # MlflowException, OSError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{key}={model_uri!r}: cannot load model: {first}") from None


def pinned_model_uri(model_uri: str) -> str:
    """models:/name@alias as the version the alias points at now (models:/name/7); any other
    URI as it is. What a run read, when the alias has moved on since."""
    from mlflow.tracking import MlflowClient

    if not model_uri.startswith("models:/") or "@" not in model_uri:
        return model_uri
    name, alias = model_uri.removeprefix("models:/").split("@", 1)
    try:
        version = MlflowClient().get_model_version_by_alias(name, alias).version
    except Exception:  # noqa: BLE001 (the load that follows names the problem)
        return model_uri
    return f"models:/{name}/{version}"
