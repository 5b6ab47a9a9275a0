"""Compute precision is chosen by the machine: bf16 only where the hardware runs it natively."""

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
