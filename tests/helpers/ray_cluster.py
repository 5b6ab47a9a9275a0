"""A real two-node Ray cluster on this machine: a head and a second worker node."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from tests.helpers.project import BIN
from tests.helpers.servers import free_port


class RayCluster:
    def __init__(self, cpus_per_node: int = 1):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Ray 2.60 authenticates every client with a token: one for this cluster, by env.
        self.env = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        ray = str(BIN / "ray")
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}"]
        self._run([ray, "start", "--head", f"--port={self.port}", "--include-dashboard=false",
                   "--disable-usage-stats", *common])  # fmt: skip
        self._run([ray, "start", f"--address={self.address}", *common])

    def _run(self, cmd: list[str]) -> None:
        env = {**os.environ, **self.env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=180)

    def stop(self) -> None:
        self._run([str(BIN / "ray"), "stop", "--force"])


def job_workers() -> list[int]:
    """Pids of Ray worker processes running a Hydra job right now."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::_run_job"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids
