"""Real servers on 127.0.0.1 for the tests: PostgreSQL + `mlflow server`, `mlflow models serve`."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from digitpipe.commands.server import server_command, start_postgres, stop_postgres, wait_until_up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrackingServer:
    """A PostgreSQL cluster in a temp folder and an `mlflow server` proxying artifacts."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.database = start_postgres(folder, free_port())
        self.artifacts = folder / "artifacts"
        self.process = subprocess.Popen(
            server_command(self.database, str(self.artifacts), self.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(self.port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        stop_postgres(self.folder)


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
