"""Import rules: the layer contracts of ``.importlinter`` hold, and every module of
``tessera`` imports on its own in a fresh interpreter, with no help from modules
imported earlier. That catches circular imports and hidden import-order
dependencies (the idea of aiohttp's ``tests/test_circular_imports.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tessera

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(tessera.__file__).resolve().parent
SKIPPED_PACKAGES = ("migrations",)
"""Alembic's env.py and revision scripts run only inside alembic's context."""


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if any(p in SKIPPED_PACKAGES for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def test_layer_contracts() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    command = str(exe) if exe.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.skip("lint-imports (import-linter) is not installed")
    result = subprocess.run(
        [command, "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
