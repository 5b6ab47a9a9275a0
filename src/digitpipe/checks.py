"""What a stage would refuse, checked before anything runs: `make exp` checks before DVC
removes the stages' outputs, the sweep command before any job trains. Each check raises the
stage's own one-line UserError."""

from __future__ import annotations

from omegaconf import DictConfig

from digitpipe.paths import Paths

MNIST_TRAIN_IMAGES = 60_000  # MNIST's training file, before the validation split


def builds(cfg: DictConfig) -> None:
    """The train stage's model, optimizer and loss, built and compiled under this machine's
    precision and for the training set's size (a learning-rate schedule counts its steps), as
    the stage will (a few seconds: Keras loads); a config mistake there raises the stage's own
    one-line UserError."""
    import keras

    from digitpipe import precision
    from digitpipe.stages.train import compiled_model

    keras.mixed_precision.set_dtype_policy(
        precision.for_this_machine(cfg.train.mixed_precision).policy
    )
    limit = cfg.data.train_limit or MNIST_TRAIN_IMAGES
    compiled_model(cfg, min(limit, MNIST_TRAIN_IMAGES) - cfg.data.val_size)


def scans(cfg: DictConfig, paths: Paths) -> None:
    """The scans folder and its labels file as predict-scans reads them, and the model that
    scans.model_uri names: a folder that is not there, a labels.csv it would refuse or a model
    the store does not have is found before anything runs."""
    from digitpipe.scans import read
    from digitpipe.scans.labels import read_labels

    listing = read.list_folder(paths.resolve_user_path(cfg.scans.dir))
    read_labels(listing.folder, cfg.scans.labels_file)
    champion = f"models:/{cfg.mlflow.registered_model}@champion"
    if cfg.scans.model_uri == champion and cfg.mlflow.log_model:
        return  # the run's own evaluate stage may be the one to set it, before predict-scans
    if cfg.scans.model_uri:
        from digitpipe import tracking

        tracking.configure(cfg, paths)
        tracking.check_model_uri(cfg.scans.model_uri)
