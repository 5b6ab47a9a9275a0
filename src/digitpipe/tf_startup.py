"""How TensorFlow starts in every digitpipe process: set up before anything imports it.

- Its oneDNN CPU kernels on: TensorFlow turns them on by itself only for CPUs with AVX-512
  VNNI/BF16 or AMX; on an AVX2-only CPU it leaves them off and trains at half the speed (fast_cnn,
  batch 256, on a 2-core AVX2 EPYC: 30 against 60 ms a step). Read when TensorFlow loads; a
  user's own TF_ENABLE_ONEDNN_OPTS wins (precision.onednn says which).
- Its start-up chatter off stderr: C++ INFO logs, and the oneDNN notice, which TensorFlow writes
  before its logging is set up, past TF_CPP_MIN_LOG_LEVEL. A user's mistake stays one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~4 ms) at each start
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

OURS = "DIGITPIPE_SET_ONEDNN"  # marks our own setting, which worker processes inherit
ONEDNN_SET_BY_USER = "TF_ENABLE_ONEDNN_OPTS" in os.environ and OURS not in os.environ
CHATTER = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
)


@contextmanager
def stderr_without(noise: tuple[str, ...]) -> Iterator[None]:
    """Everything written to file descriptor 2 (C++ included) passes, except lines with `noise`."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(x for x in lines if not any(n in x for n in noise)))
            sys.stderr.flush()


class QuietTensorFlowImport:
    """An import finder (sys.meta_path; importlib.abc left out, it costs 28 ms at every start)
    that imports the `tensorflow` package, whoever asks first, inside stderr_without."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "tensorflow":
            return None
        import importlib.util

        sys.meta_path.remove(self)  # once, and the real finders answer
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            with stderr_without(CHATTER):
                load(module)

        spec.loader.exec_module = exec_module
        return spec


def prepare() -> None:
    """Called by digitpipe/__init__.py, before any stage imports TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING logs
    if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        os.environ.update({"TF_ENABLE_ONEDNN_OPTS": "1", OURS: "1"})
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, QuietTensorFlowImport())
