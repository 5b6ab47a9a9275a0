"""Training speed: the plain recipe vs the pipeline's training path, same data, same models."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import keras
import pandas as pd

from bench.common import REPO, env, scratch
from digitpipe import models, precision, tf_startup
from digitpipe.config import compose
from digitpipe.mnist import splits
from digitpipe.paths import Paths
from digitpipe.stages import prepare, train

ARCHITECTURES = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))  # all shipped


def workspace(name: str, overrides: list[str]) -> tuple[Paths, list[str]]:
    """A scratch workspace with MNIST prepared as `overrides` say (raw files from the repo)."""
    paths = Paths(workspace=scratch() / name, root=REPO)
    prepare.run(compose(REPO / "conf", overrides), paths)
    return paths, overrides


def plain_recipe(
    model_name: str, paths: Paths, epochs: int
) -> tuple[keras.Model, list[float], str]:
    """The origin's recipe: model.fit on NumPy arrays, Adam, batch 64, float32, TensorFlow's
    defaults (its own process: bench/plain_recipe.py). The model, its epoch seconds, and
    whether TensorFlow ran oneDNN there ("on"/"off")."""
    out = scratch() / f"plain-{model_name}-{epochs}"
    child_env = env()
    if not tf_startup.ONEDNN_SET_BY_USER:  # TensorFlow's own default, not digitpipe's
        child_env.pop("TF_ENABLE_ONEDNN_OPTS", None)
        child_env.pop(tf_startup.OURS, None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.plain_recipe", model_name, str(paths.prepared_dir),
         str(epochs), str(out)],
        cwd=REPO, env=child_env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"plain recipe {model_name} failed:\n{done.stderr[-3000:]}")
    result = json.loads((out / "result.json").read_text())
    return models.load(out / "model.keras"), result["epoch_time_s"], result["onednn"]


def pipeline(overrides: list[str], paths: Paths) -> tuple[dict, list[float]]:
    """The pipeline's own train stage (MLflow logging included, model upload off)."""
    cfg = compose(REPO / "conf", [*overrides, "mlflow.log_model=false", "train.verbose=0"])
    summary = train.run(cfg, paths)
    return summary, pd.read_csv(paths.history_file)["epoch_time_s"].tolist()


def test_accuracy(model: keras.Model, paths: Paths, split: str = "test") -> float:
    x, y = splits.load(paths.prepared_dir, split)
    return float((model.predict(x, batch_size=1024, verbose=0).argmax(1) == y).mean())


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one image's forward pass: 2 per multiply-add of every
    Conv2D and Dense layer (the rest is a rounding error). Training costs about 3x this."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, out_h, out_w, filters = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            total += 2 * out_h * out_w * kernel_h * kernel_w * layer.input.shape[-1] * filters
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def matmul_peak_gflops(dtype: str = "float32", n: int = 2048, repeats: int = 7) -> float:
    """The cores' measured ceiling: the best of `repeats` n x n matrix products, in GFLOP/s."""
    import tensorflow as tf

    a, b = tf.random.normal((n, n), dtype=dtype), tf.random.normal((n, n), dtype=dtype)
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product().numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product().numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def throughput(repeats: int = 3) -> tuple[list[list], list[dict]]:
    """Images/s of each architecture: the plain recipe and the pipeline's `train=fast` path,
    side by side, 10,000 training images per epoch; epoch 1 builds the graph, the next
    `repeats` epochs are timed (min and median). Against the cores' matmul ceiling."""
    data = ["data.train_limit=11000", "data.val_size=1000"]
    paths, _ = workspace("throughput", data)
    images, epochs = 10000, repeats + 1
    policy = precision.for_this_machine("auto").policy
    peak = {"float32": matmul_peak_gflops("float32")}
    if policy == "mixed_bfloat16":
        peak["mixed_bfloat16"] = matmul_peak_gflops("bfloat16")
    rows, records = [], []
    for name in ARCHITECTURES:
        plain_model, plain_times, plain_onednn = plain_recipe(name, paths, epochs=epochs)
        overrides = [*data, f"model={name}", "train=fast", f"train.epochs={epochs}"]
        _, fast_times = pipeline(overrides, paths)
        plain = [images / t for t in plain_times[1:]]
        fast = [images / t for t in fast_times[1:]]
        flops = forward_flops(plain_model)
        fast_cfg = compose(REPO / "conf", overrides).train
        used = precision.for_this_machine(fast_cfg.mixed_precision).policy
        gflops = 3 * flops * statistics.median(fast) / 1e9
        record = {
            "architecture": name,
            "plain_img_s_min": round(min(plain)),
            "plain_img_s_median": round(statistics.median(plain)),
            "pipeline_img_s_min": round(min(fast)),
            "pipeline_img_s_median": round(statistics.median(fast)),
            "speedup_median": round(statistics.median(fast) / statistics.median(plain), 2),
            "speedup_min": round(min(fast) / min(plain), 2),
            "pipeline_batch": int(fast_cfg.batch_size),
            "pipeline_precision": used,
            "plain_onednn": plain_onednn,
            "pipeline_onednn": precision.onednn()[0],
            "forward_mflops_per_image": round(flops / 1e6, 2),
            "pipeline_gflop_s": round(gflops, 1),
            "peak_gflop_s": round(peak.get(used, peak["float32"]), 1),
            "share_of_peak": round(gflops / peak.get(used, peak["float32"]), 3),
        }
        records.append(record)
        rows.append([
            name,
            f"{record['plain_img_s_min']} / {record['plain_img_s_median']}",
            f"{record['pipeline_img_s_min']} / {record['pipeline_img_s_median']}",
            f"{record['speedup_median']:.2f}x",
            record["forward_mflops_per_image"],
            f"{record['pipeline_gflop_s']} of {record['peak_gflop_s']}",
            f"{record['share_of_peak']:.0%}",
            f"{plain_onednn} / {record['pipeline_onednn']}",
        ])  # fmt: skip
    return rows, records


def xla_probe(repeats: int = 3) -> dict:
    """seed_blog_cnn on the pipeline's path with and without XLA (train.jit_compile)."""
    data = ["data.train_limit=11000", "data.val_size=1000"]
    paths, _ = workspace("throughput", data)
    rates = {}
    for jit in (False, True):
        overrides = [*data, "train=fast", f"train.epochs={repeats + 1}", f"train.jit_compile={jit}"]
        _, times = pipeline(overrides, paths)
        rates[jit] = statistics.median(10000 / t for t in times[1:])
    return {"pipeline_img_s_median": round(rates[False]), "xla_img_s_median": round(rates[True])}


def equal_epochs_accuracy() -> dict:
    """seed_blog_cnn, full MNIST, 5 epochs each: plain recipe vs pipeline's fast path."""
    paths, _ = workspace("full", [])
    plain_model, plain_times, _ = plain_recipe("seed_blog_cnn", paths, epochs=5)
    summary, fast_times = pipeline(["train=fast", "train.epochs=5"], paths)
    fast_model = models.load(paths.model_file)
    return {
        "epochs": 5,
        "plain_test_accuracy": round(test_accuracy(plain_model, paths), 4),
        "plain_train_s": round(sum(plain_times), 1),
        "pipeline_test_accuracy": round(test_accuracy(fast_model, paths), 4),
        "pipeline_train_s": summary["train_time_s"],
    }


# row key: (row name, preset overrides, seeds, target test accuracy, training time budget s)
FRONTIER = {
    "fast": ("experiment=fast", ["experiment=fast"], (1, 2, 3), 0.990, 8),
    "fast-2-epochs": ("experiment=fast train.epochs=2", ["experiment=fast", "train.epochs=2"],
                      (1, 2, 3), 0.990, None),
    "best": ("experiment=best", ["experiment=best"], (42,), 0.997, 900),
}  # fmt: skip


def verdict(record: dict) -> str:
    """'99.0% in <= 8 s: accuracy met, time not': each half judged on its own, the accuracy
    by the seeds' mean, the time by the slowest seed (every seed must fit the budget)."""
    accurate = record["test_accuracy_mean"] >= record["target"]
    budget = record.get("budget_s")
    if budget is None:
        return f"{record['target']:.1%}: {'met' if accurate else 'not met'}"
    in_time = max(r["train_s"] for r in record["runs"]) <= budget
    parts = f"accuracy {'met' if accurate else 'not'}, time {'met' if in_time else 'not'}"
    return f"{record['target']:.1%} in <= {budget} s: {parts}"


def ensemble_record(ensemble: keras.Model, members: dict, paths: Paths) -> dict:
    """The members' mean as one model: total training time, validation and test accuracy."""
    return {
        "preset": f"ensemble of the {len(members['runs'])} {members['preset']} models",
        "model": f"mean of {len(members['runs'])} {members['model']}",
        "epochs": members["epochs"], "target": 0.998,
        "runs": [{"seed": "+".join(str(r["seed"]) for r in members["runs"]),
                  "train_s": round(sum(r["train_s"] for r in members["runs"]), 1),
                  "val_accuracy": round(test_accuracy(ensemble, paths, "val"), 4),
                  "test_accuracy": round(test_accuracy(ensemble, paths), 4)}],
    }  # fmt: skip


def frontier(keys: list[str] | None = None) -> tuple[list[list], list[dict]]:
    """Each preset on full MNIST, training wall time and test accuracy per seed, and the mean
    of the experiment=fast seeds as one ensemble (commands/ensemble.py's `average`) with their
    total training time. Validation accuracy is shown because it is what selection may use."""
    from digitpipe.commands.ensemble import average

    paths, _ = workspace("full", [])
    rows, records, fast_members = [], [], []
    for key in dict.fromkeys(keys or FRONTIER):  # each row once, in the order asked
        name, overrides, seeds, target, budget = FRONTIER[key]
        runs = []
        for seed in seeds:
            summary, _ = pipeline([*overrides, f"train.seed={seed}"], paths)
            model = models.load(paths.model_file)
            runs.append({
                "seed": seed,
                "train_s": summary["train_time_s"],
                "val_accuracy": summary.get("final_val_accuracy"),
                "test_accuracy": round(test_accuracy(model, paths), 4),
            })  # fmt: skip
            if key == "fast":
                fast_members.append(model)
        cfg = compose(REPO / "conf", overrides)
        records.append({"preset": name, "model": cfg.model.name, "epochs": cfg.train.epochs,
                        "target": target, "budget_s": budget, "runs": runs})  # fmt: skip
        if key == "fast":
            records.append(ensemble_record(average(fast_members), records[-1], paths))
    for record in records:
        accuracies = [r["test_accuracy"] for r in record["runs"]]
        times = [r["train_s"] for r in record["runs"]]
        record["test_accuracy_mean"] = round(statistics.mean(accuracies), 4)
        record["verdict"] = verdict(record)
        rows.append([
            record["preset"], record["model"], record["epochs"],
            ", ".join(str(r["seed"]) for r in record["runs"]),
            " / ".join(f"{t:.0f}" for t in times),
            " / ".join(f"{a:.2%}" for a in accuracies),
            " / ".join("-" if r["val_accuracy"] is None else f"{r['val_accuracy']:.2%}"
                       for r in record["runs"]),
            record["verdict"],
        ])  # fmt: skip
    return rows, records
