"""`make bench`: measure training speed, stage overhead, predict-scans speed and memory.

Every comparison is measured side by side in one run so that its ratio holds on a noisy
machine. Prints Markdown-friendly tables and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import os
import time

from bench import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ("train", "frontier", "overhead", "scans", "memory", "sweeps")
    on_request = ("transfer",)  # six trainings per recipe list: only when asked for
    parser.add_argument("--only", choices=sections + on_request, nargs="+")
    parser.add_argument(
        "--presets", nargs="*", help="frontier rows to run (default all): fast fast-2-epochs best"
    )
    args = parser.parse_args()
    if args.presets and "frontier" not in (args.only or ["frontier"]):
        parser.error("--presets picks frontier rows: add frontier to --only")
    only = set(args.only or (["frontier"] if args.presets else sections))
    os.environ.update(common.env())  # in-process training logs to a throwaway MLflow store
    from bench import overhead, scans, sweeps, training, transfer

    unknown = set(args.presets or []) - set(training.FRONTIER)
    if unknown:
        parser.error(f"--presets {' '.join(sorted(unknown))}: not in {' '.join(training.FRONTIER)}")

    started = time.time()
    results: dict = {"machine": common.machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
    out = [f"Machine: {results['machine']}"]

    def section(key: str, measure, title: str, header: list[str]) -> None:
        """Measure, keep the figures (saved at once: a later failure loses nothing), print."""
        rows, measured = measure()
        results[key] = measured
        common.save(results)
        out.append(common.table(title, header, rows))

    try:
        if "train" in only:
            rows, records = training.throughput()
            results["throughput"] = records
            common.save(results)
            out.append(
                common.table(
                    "Training throughput, 10,000 images per epoch, min / median of 3 epochs after "
                    "the first: plain recipe (NumPy, batch 64, float32, TensorFlow's defaults, "
                    "its own process) vs the pipeline's train=fast path (precision, batch and "
                    "oneDNN as this machine chooses them); "
                    "achieved GFLOP/s (3x the forward FLOPs per image) against the cores' "
                    "matmul ceiling",
                    [
                        "architecture",
                        "plain img/s",
                        "pipeline img/s",
                        "speed-up (medians)",
                        "forward MFLOP/img",
                        "pipeline GFLOP/s of peak",
                        "share of peak",
                        "oneDNN plain / pipeline",
                    ],
                    rows,
                )
            )
            xla = training.xla_probe()
            results["xla"] = xla
            common.save(results)
            out.append(
                f"XLA (train.jit_compile=true) on seed_blog_cnn, pipeline path: "
                f"{xla['xla_img_s_median']} img/s vs {xla['pipeline_img_s_median']} without"
            )
            acc = training.equal_epochs_accuracy()
            results["equal_epochs"] = acc
            common.save(results)
            out.append(
                common.table(
                    "seed_blog_cnn on full MNIST, 5 epochs each",
                    ["path", "test accuracy", "training s"],
                    [
                        ["plain recipe", f"{acc['plain_test_accuracy']:.2%}", acc["plain_train_s"]],
                        [
                            "pipeline train=fast",
                            f"{acc['pipeline_test_accuracy']:.2%}",
                            acc["pipeline_train_s"],
                        ],
                    ],
                )
            )
        if "frontier" in only:
            section(
                "frontier",
                lambda: training.frontier(args.presets),
                "Accuracy/time frontier on full MNIST (training wall s and test accuracy per seed)",
                [
                    "preset",
                    "model",
                    "epochs",
                    "seeds",
                    "training s",
                    "test accuracy",
                    "val accuracy",
                    "target",
                ],
            )
        if "overhead" in only:
            section("overhead", overhead.measure, "Stage overhead", ["what", "seconds"])
        if "sweeps" in only:
            section(
                "sweeps",
                sweeps.measure,
                "Tiny 4-job sweep (2 architectures x 2 seeds, 1 epoch) per launcher",
                ["launcher", "wall time", "jobs/min"],
            )
        if "transfer" in only:
            section(
                "transfer",
                transfer.measure,
                "Unseen UCI digits (not the scan benchmark's) rendered as scan cases and read by "
                "the reader, per recipe, seeds side by side",
                ["recipe", "seeds", "training s", "MNIST val", "MNIST test",
                 *transfer.CASES, "mean of cases"],
            )  # fmt: skip
            section(
                "uci_in_domain",
                transfer.in_domain,
                "UCI digits read by a classifier trained on UCI's own 8x8 grids (scikit-learn SVC)",
                ["held out", "per fold", "mean", "a 10-digit row right"],
            )
        if "scans" in only or "memory" in only:
            rows, measured = scans.measure() if "scans" in only else ([], {})
            if "memory" in only:
                more, extra = scans.train_peak_rss()
                rows, measured = rows + more, measured | extra
            results["scans_and_memory"] = measured
            out.append(common.table("predict-scans and memory", ["what", "value"], rows))
    finally:
        common.cleanup()
        print("\n".join(out))
    results["bench_wall_s"] = round(time.time() - started)
    path = common.save(results)
    print(f"\n(bench took {results['bench_wall_s']} s; results in {path})")


if __name__ == "__main__":
    main()
