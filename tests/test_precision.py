"""Compute precision is chosen by the machine: bf16 only where the hardware runs it natively."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digitpipe import precision

AVX2_ONLY = frozenset({"fma", "avx", "avx2"})
AVX512_BF16 = AVX2_ONLY | {"avx512f", "avx512_bf16"}
AMX = AVX2_ONLY | {"amx_tile", "amx_bf16"}


@pytest.mark.parametrize(
    ("flags", "gpus", "policy", "reason"),
    [
        (AVX2_ONLY, [], "float32", "no native bfloat16"),
        (AVX512_BF16, [], "mixed_bfloat16", "avx512_bf16"),
        (AMX, [], "mixed_bfloat16", "amx_bf16"),
        (AVX2_ONLY, [(8, 0)], "mixed_float16", "tensor cores"),
        (AVX512_BF16, [(9, 0)], "mixed_float16", "tensor cores"),
        (AVX2_ONLY, [(6, 1)], "float32", "without tensor cores"),
        (frozenset(), [], "float32", "no native bfloat16"),
    ],
)
def test_auto_picks_the_precision_the_hardware_runs_natively(flags, gpus, policy, reason):
    chosen = precision.choose("auto", flags, gpus)
    assert chosen.policy == policy
    assert reason in chosen.reason


def test_an_explicit_policy_is_obeyed_even_where_it_is_slow():
    chosen = precision.choose("mixed_bfloat16", AVX2_ONLY, [])
    assert chosen == precision.Choice("mixed_bfloat16", "set in config")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_bf16\nbugs\t: x\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


def test_every_preset_lets_the_machine_choose():
    from digitpipe.config import compose
    from tests.helpers.project import REPO

    for preset in ("fast", "best", "scan_robust"):
        cfg = compose(REPO / "conf", [f"experiment={preset}"])
        assert cfg.train.mixed_precision == "auto", preset
    assert compose(REPO / "conf").train.mixed_precision == "auto"


def onednn_in_a_fresh_process(**env: str) -> tuple[str, str]:
    """precision.onednn() as a new Python process that imports digitpipe reports it."""
    ours = ("TF_ENABLE_ONEDNN_OPTS", "DIGITPIPE_SET_ONEDNN")
    base = {k: v for k, v in os.environ.items() if k not in ours}
    probe = "from digitpipe import precision; print(precision.onednn())"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=base | env, capture_output=True, text=True, check=True
    )
    return ast.literal_eval(done.stdout.strip())


def test_tensorflows_onednn_kernels_are_on_in_every_stage_whatever_the_cpu():
    # TensorFlow leaves them off on AVX2-only CPUs, where training then takes twice as long
    state, reason = onednn_in_a_fresh_process()
    assert state == "on" and reason.startswith("TF_ENABLE_ONEDNN_OPTS=1: ")


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (AVX2_ONLY, "turned on by digitpipe (TensorFlow leaves them off without VNNI/BF16/AMX)"),
        (AVX512_BF16, "TensorFlow's own default on this CPU (avx512_bf16)"),
        (AMX, "TensorFlow's own default on this CPU (amx_bf16, amx_tile)"),
        (AVX2_ONLY | {"avx512_vnni"}, "TensorFlow's own default on this CPU (avx512_vnni)"),
    ],
)
def test_the_onednn_reason_says_whose_default_it_is_on_each_kind_of_cpu(flags, reason):
    assert precision.onednn_on_reason(flags).startswith(reason)


def test_a_users_own_onednn_setting_is_obeyed_and_said_to_be_theirs():
    assert onednn_in_a_fresh_process(TF_ENABLE_ONEDNN_OPTS="0") == (
        "off",
        "TF_ENABLE_ONEDNN_OPTS=0, set by the user",
    )


def test_a_worker_process_that_inherits_our_setting_does_not_call_it_the_users():
    """joblib and Ray workers inherit the launching process's environment, our setting with it."""
    state, reason = onednn_in_a_fresh_process(TF_ENABLE_ONEDNN_OPTS="1", DIGITPIPE_SET_ONEDNN="1")
    assert state == "on" and "set by the user" not in reason


def test_tensorflows_start_up_chatter_stays_off_stderr_and_nothing_else_does():
    # TensorFlow writes its oneDNN notice before its logging is set up, past TF_CPP_MIN_LOG_LEVEL
    probe = (
        "import os, digitpipe\n"
        "from digitpipe.tf_startup import stderr_without\n"
        "import tensorflow\n"
        "with stderr_without(('chatter',)):\n"
        "    os.write(2, b'chatter from C++\\nerror: kept\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stderr == "error: kept\n"
