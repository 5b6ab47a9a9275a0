"""Which project modules a module imports, followed through the whole project (by AST)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_file(module: str) -> Path:
    base = SRC.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def direct_imports(module: str) -> set[str]:
    """digitpipe modules named by import statements in `module` (including function bodies)."""
    tree = ast.parse(module_file(module).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("digitpipe")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("digitpipe"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if module_file(candidate).is_file() else node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            pass  # dynamic stage lookup: covered by dvc.yaml's own list
    return found


def closure(module: str) -> set[str]:
    """`module` and every project module it imports, directly or not (packages' __init__ too)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not module_file(name).is_file():
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        todo += sorted(direct_imports(name))
    return seen


def files(module: str) -> set[str]:
    """The source files of `closure(module)`, relative to the repo root."""
    root = SRC.parent
    return {module_file(m).relative_to(root).as_posix() for m in closure(module)}
