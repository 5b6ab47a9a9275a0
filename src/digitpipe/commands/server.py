"""A shared MLflow tracking server: PostgreSQL as its backend store, artifacts proxied by the
server (clients upload over HTTP; nothing is written by clients to a shared disk).

    python -m digitpipe.commands.server                 (make server)
    python -m digitpipe.commands.server --port 5001 --folder .server
    python -m digitpipe.commands.server --host 0.0.0.0   (reachable from the team's machines)

By default it starts its own PostgreSQL cluster in `<folder>/pgdata` (Debian's `postgresql`
package: initdb/pg_ctl), listening on 127.0.0.1 only. A team points it at its own database with
DIGITPIPE_DB_URI=postgresql://user:password@host:5432/mlflow and at its own artifact store with
DIGITPIPE_ARTIFACTS=s3://bucket/path (credentials from the environment, never from files).
Clients then set MLFLOW_TRACKING_URI=http://<host>:<port>. Stopped by Ctrl-C or `kill`, it stops
its PostgreSQL too; one left running by a harder stop is reused by the next start.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from digitpipe.errors import UserError, cli

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_tool(name: str) -> str:
    """A PostgreSQL server program (Debian keeps them outside PATH)."""
    found = shutil.which(name) or next(
        (str(d / name) for d in PG_BIN_DIRS if (d / name).is_file()), None
    )
    if found is None:
        raise UserError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start_postgres(folder: Path, port: int) -> str:
    """A cluster in `folder` on 127.0.0.1:`port` with a database `mlflow`; returns its URI."""
    data = folder / "pgdata"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        reachable = subprocess.run(as_postgres(["test", "-w", str(folder)])).returncode == 0
        if not reachable:
            raise UserError(
                f"{folder}: the postgres user cannot reach this folder (a parent is private); "
                "pass --folder somewhere it can, e.g. /var/tmp/digitpipe-server"
            )
    if not (data / "PG_VERSION").is_file():
        subprocess.run(
            as_postgres(
                [pg_tool("initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8"]
            ),  # fmt: skip
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if postgres_running(folder):  # left by a server stopped without its clean-up: reuse it
        return f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
    subprocess.run(
        as_postgres(
            [
                pg_tool("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(data / "server.log"),
                "-w",
                "start",
            ]
        ),  # fmt: skip
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        as_postgres(
            [pg_tool("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"]
        ),  # fmt: skip
        capture_output=True,  # "already exists" on a restart is fine
    )
    return f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/mlflow"


def postgres_running(folder: Path) -> bool:
    data = folder / "pgdata"
    if not (data / "postmaster.pid").is_file():
        return False
    status = as_postgres([pg_tool("pg_ctl"), "-D", str(data), "status"])
    return subprocess.run(status, capture_output=True).returncode == 0


def port_taken(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def stop_postgres(folder: Path) -> None:
    data = folder / "pgdata"
    if (data / "postmaster.pid").is_file():
        subprocess.run(
            as_postgres([pg_tool("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )


def server_env() -> dict[str, str]:
    """The server's environment: MLflow 3's job runner (GenAI trace jobs, six huey processes
    that keep a core busy) is switched off; nothing here uses it."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def server_command(
    db_uri: str, artifacts: str, port: int, workers: int = 1, host: str = "127.0.0.1"
) -> list[str]:
    return [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri", db_uri,
        "--artifacts-destination", artifacts,
        "--serve-artifacts",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


def wait_until_up(port: int, timeout_s: float = 90) -> None:
    import urllib.request

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise UserError(f"mlflow server on 127.0.0.1:{port} did not come up in {timeout_s:.0f} s")


@cli
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(".server"))
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--pg-port", type=int, default=54329)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)"
    )
    args = parser.parse_args()
    if port_taken(args.host, args.port):
        raise UserError(
            f"--port {args.port}: in use on {args.host} (a server already runs there? stop it, "
            "or pass another --port)"
        )
    folder = args.folder.resolve()
    with in_use(folder):
        serve(args, folder)


@contextlib.contextmanager
def in_use(folder: Path) -> Iterator[None]:
    """The folder held for this server's life: a second server there would share its
    PostgreSQL and stop it on its way out (the lock goes with the process, however it ends)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / "server.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(
            f"--folder {folder}: another server uses it (stop that one, or pass another --folder)"
        ) from None
    try:
        yield
    finally:
        lock.release()


def serve(args: argparse.Namespace, folder: Path) -> None:
    """PostgreSQL (unless DIGITPIPE_DB_URI names one) and `mlflow server`, until stopped."""
    db_uri = os.environ.get("DIGITPIPE_DB_URI")
    own_postgres = db_uri is None
    if own_postgres:
        db_uri = start_postgres(folder, args.pg_port)
    artifacts = os.environ.get("DIGITPIPE_ARTIFACTS") or str(folder / "artifacts")
    print(f"server: backend {db_uri.split('@')[-1]}, artifacts {artifacts}")
    where = "127.0.0.1" if args.host == "127.0.0.1" else "<this machine's address>"
    print(f"server: clients set MLFLOW_TRACKING_URI=http://{where}:{args.port}")
    command = server_command(db_uri, artifacts, args.port, host=args.host)
    server = subprocess.Popen(command, env=server_env())
    try:
        server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        if own_postgres:
            stop_postgres(folder)


if __name__ == "__main__":
    main()
