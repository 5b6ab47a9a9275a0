"""Real servers on 127.0.0.1 for the tests: PostgreSQL + `mlflow server`, `mlflow models serve`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from digitpipe.commands.server import (
    server_command,
    server_env,
    start_postgres,
    stop_postgres,
    wait_until_up,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrackingServer:
    """A PostgreSQL cluster in a temp folder and an `mlflow server` proxying artifacts.

    The folder is a fresh one in the system's temp dir: PostgreSQL runs as its own user, which
    cannot enter pytest's private tmp_path."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="digitpipe-server-"))
        folder = self.folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.database = start_postgres(folder, free_port())
        self.artifacts = folder / "artifacts"
        self.process = subprocess.Popen(
            server_command(self.database, str(self.artifacts), self.port),
            env=server_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(self.port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        stop_postgres(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


def post_json(url: str, body: dict, timeout: float = 60) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(url: str, timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)
