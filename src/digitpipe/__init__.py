"""digitpipe: a reproducible MNIST experiment pipeline (DVC + Hydra + Keras + MLflow)."""

from digitpipe import tf_startup

tf_startup.prepare()  # oneDNN kernels on, start-up chatter off: before any stage loads TensorFlow

__version__ = "0.1.0"
