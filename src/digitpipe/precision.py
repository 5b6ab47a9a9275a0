"""Which compute precision this machine runs fast: chosen from its hardware, never assumed.

bfloat16 halves the work only where the hardware has it (AVX512-BF16 or AMX on the CPU); on an
AVX2-only CPU it is emulated and about 11x *slower* than float32. GPUs with tensor cores want
float16. `train.mixed_precision: auto` picks by those facts; an explicit policy is obeyed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# CPUs on which TensorFlow turns its oneDNN kernels on by itself (TensorFlow 2.9+ release notes:
# "CPUs with neural-network-focused hardware features such as AVX512_VNNI, AVX512_BF16, AMX")
ONEDNN_NATIVE_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


@dataclass(frozen=True)
class Choice:
    policy: str  # a Keras dtype policy name
    reason: str


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU feature flags (Linux); empty where they cannot be read."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """(major, minor) of each GPU TensorFlow sees; empty on CPU-only machines."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        found.append(tuple(details.get("compute_capability", (0, 0))))
    return found


def choose(setting: str, flags: frozenset[str], gpus: list[tuple[int, int]]) -> Choice:
    """The policy for `train.mixed_precision` on a machine with these CPU flags and GPUs."""
    if setting != "auto":
        return Choice(setting, "set in config")
    if gpus:
        if min(gpus) >= (7, 0):
            return Choice("mixed_float16", f"GPU with tensor cores (compute {min(gpus)})")
        return Choice("float32", f"GPU without tensor cores (compute {min(gpus)})")
    native = sorted(flags.intersection(NATIVE_BF16_FLAGS))
    if native:
        return Choice("mixed_bfloat16", f"CPU runs bfloat16 natively ({', '.join(native)})")
    return Choice("float32", "CPU has no native bfloat16 (no avx512_bf16/amx_bf16): float32")


def for_this_machine(setting: str) -> Choice:
    return choose(setting, cpu_flags(), gpu_compute_capabilities())


def onednn() -> tuple[str, str]:
    """Whether TensorFlow runs its oneDNN CPU kernels in this process ("on"/"off"), and who
    decided: digitpipe turns them on (tf_startup.py) unless the user set TF_ENABLE_ONEDNN_OPTS,
    or TensorFlow was loaded before digitpipe and kept its own default."""
    from digitpipe import tf_startup

    try:
        from tensorflow.python.util import _pywrap_util_port

        on = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TensorFlow build without the probe
        on = os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"
    setting = f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '')}"
    if tf_startup.ONEDNN_SET_BY_USER:
        return ("on" if on else "off"), f"{setting}, set by the user"
    if on:
        return "on", f"{setting}: {onednn_on_reason(cpu_flags())}"
    return "off", "TensorFlow was loaded before digitpipe could turn it on"


def onednn_on_reason(flags: frozenset[str]) -> str:
    """Why the kernels are on where digitpipe left them on: TensorFlow's own default on CPUs
    with VNNI/BF16/AMX, digitpipe's doing elsewhere (half the step time on AVX2-only CPUs)."""
    native = sorted(flags.intersection(ONEDNN_NATIVE_FLAGS))
    if native:
        return f"TensorFlow's own default on this CPU ({', '.join(native)})"
    return (
        "turned on by digitpipe (TensorFlow leaves them off without VNNI/BF16/AMX): about 2x "
        "faster training on AVX2-only CPUs"
    )


def reserved_threads() -> int | None:
    """The CPUs a scheduler reserved for this job: Ray sets OMP_NUM_THREADS for its tasks (as do
    SLURM setups). None: no reservation, TensorFlow uses every core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def match_threads(threads: int | None) -> None:
    """TensorFlow's thread pools sized to the reservation (before TensorFlow starts)."""
    if threads is None:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
