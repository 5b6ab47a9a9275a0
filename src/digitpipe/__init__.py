"""digitpipe: a reproducible MNIST experiment pipeline (DVC + Hydra + Keras + MLflow)."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides the pipeline's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow runs its oneDNN CPU kernels by default only on CPUs with AVX-512 VNNI/BF16 or AMX;
# on an AVX2-only CPU it leaves them off and trains at half the speed (fast_cnn, batch 256, on a
# 2-core AVX2 EPYC: 30 against 60 ms a step). Read when TensorFlow loads, so it is set here,
# before any stage imports it; a user's own TF_ENABLE_ONEDNN_OPTS wins (precision.onednn).
ONEDNN_SET_BY_USER = "TF_ENABLE_ONEDNN_OPTS" in os.environ
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
