"""Shared helpers: a prepared workspace, subprocess timing and peak memory, table printing."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results"


def env() -> dict[str, str]:
    """Subprocess environment: this venv first, a throwaway MLflow store."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{scratch() / 'bench-mlflow.db'}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


_SCRATCH: Path | None = None


def scratch() -> Path:
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="digitpipe-bench-"))
    return _SCRATCH


def cleanup() -> None:
    if _SCRATCH is not None:
        shutil.rmtree(_SCRATCH, ignore_errors=True)


def timed(cmd: list[str], cwd: Path, repeat: int = 1) -> tuple[float, subprocess.CompletedProcess]:
    """Median wall time of `cmd` over `repeat` runs, and the last result."""
    times, done = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 2):
            raise RuntimeError(f"{cmd} failed:\n{done.stdout}\n{done.stderr}")
    return statistics.median(times), done


def peak_rss_mib(cmd: list[str], cwd: Path) -> float:
    """Peak resident memory of a command (its own process tree), in MiB."""
    probe = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *cmd], cwd=cwd, env=env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{done.stdout}\n{done.stderr}")
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    from digitpipe import precision

    flags = sorted(f for f in precision.cpu_flags() if f.startswith(("avx", "amx", "fma")))
    chosen = precision.for_this_machine("auto")
    onednn, onednn_reason = precision.onednn()
    devices = ", ".join(d.device_type for d in tf.config.list_physical_devices()) or "CPU"
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, TF {tf.__version__}; "
        f"devices: {devices}; CPU flags: {' '.join(flags) or 'none'}; "
        f"train.mixed_precision=auto chooses {chosen.policy} ({chosen.reason}); "
        f"oneDNN kernels {onednn} ({onednn_reason})"
    )


def table(title: str, header: list[str], rows: list[list]) -> str:
    """A plain-text table that reads well in any terminal (and pastes into Markdown)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n### {title}\n", line(cells[0]), rule, *map(line, cells[1:])])


def save(results: dict) -> Path:
    """Merge `results` into bench/results/latest.json (sections measured earlier are kept)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "latest.json"
    try:
        merged = json.loads(path.read_text())
    except (OSError, ValueError):
        merged = {}
    path.write_text(json.dumps(merged | results, indent=2) + "\n")
    return path
