"""Models are built from the configs' layer lists; reduced precision where it is safe."""

import keras

from digitpipe import models
from digitpipe.config import compose
from tests.helpers.project import REPO


def test_under_bf16_convolutions_run_in_bf16_and_the_dense_head_in_float32():
    cfg = compose(REPO / "conf", ["model=seed_blog_cnn"])
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = models.build(cfg.model)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    convolutions = [x.compute_dtype for x in model.layers if isinstance(x, keras.layers.Conv2D)]
    dense = [x.compute_dtype for x in model.layers if isinstance(x, keras.layers.Dense)]
    assert convolutions == ["bfloat16"] * 3
    assert dense == ["float32"] * 2
    assert model(keras.ops.zeros((1, 28, 28, 1))).dtype == "float32"


def test_in_float32_every_layer_computes_in_float32():
    model = models.build(compose(REPO / "conf", ["model=seed_blog_cnn"]).model)
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
