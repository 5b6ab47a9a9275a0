"""User-facing errors: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A mistake the user can fix (bad config, missing data, bad file); shown as one line."""


def server_gone(exc: BaseException) -> bool:
    """MLflow's error for a tracking server that went away mid-run (it was up at the start:
    the store check then names it in one line already)."""
    return type(exc).__module__.startswith("mlflow") and "API request to" in str(exc)


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_kill() -> None:
    """`kill` (SIGTERM) ends the command as Ctrl-C does: its MLflow run KILLED, its clean-up
    done, instead of a run left RUNNING for ever."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupted)


def cli(main: Callable[[], T]) -> Callable[[], T]:
    """Wrap a stage's main(): UserError -> 'error: ...' on stderr and exit code 2; Ctrl-C and
    `kill` -> 'error: interrupted' and exit code 130."""

    @functools.wraps(main)
    def wrapper() -> T:
        stop_on_kill()
        try:
            return main()
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as exc:
            if not server_gone(exc):
                raise
            first = str(exc).splitlines()[0][:300]
            print(f"error: mlflow: the tracking server stopped answering: {first}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
