"""Every console entry point answers --help and is declared in pyproject.toml."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_entry_point_has_help(name: str) -> None:
    module, _, function = SCRIPTS[name].partition(":")
    code = f"import sys; from {module} import {function} as main; sys.exit(main(['--help']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name}"), result.stdout[:200]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_entry_point_is_installed_on_the_venv_path(name: str) -> None:
    assert (Path(sys.executable).parent / name).exists(), f"{name} not installed; run make setup"
