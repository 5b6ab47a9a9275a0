"""The plain recipe in a process of its own, under TensorFlow's own defaults: digitpipe turns
TensorFlow's oneDNN kernels on, which a user's plain script would not have on an AVX2-only CPU.

    python -m bench.plain_recipe MODEL PREPARED_DIR EPOCHS OUT_DIR
writes OUT_DIR/model.keras and OUT_DIR/result.json (per-epoch seconds, oneDNN on or off).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tensorflow as tf  # noqa: F401  (first, so TensorFlow starts with its own defaults)


def main(model_name: str, prepared_dir: str, epochs: str, out_dir: str) -> None:
    import keras

    from bench.common import REPO
    from digitpipe import models, precision
    from digitpipe.config import compose
    from digitpipe.mnist import splits
    from digitpipe.stages.train import EpochTimer

    cfg = compose(REPO / "conf", [f"model={model_name}"])
    x, y = splits.load(Path(prepared_dir), "train")
    keras.mixed_precision.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    model = models.build(cfg.model)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x,
        keras.utils.to_categorical(y, 10),
        batch_size=64,
        epochs=int(epochs),
        callbacks=[EpochTimer()],
        verbose=0,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    result = {"epoch_time_s": history.history["epoch_time_s"], "onednn": precision.onednn()[0]}
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
