"""digitpipe: a reproducible MNIST experiment pipeline (DVC + Hydra + Keras + MLflow)."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides the pipeline's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
