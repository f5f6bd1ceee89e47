"""A throw-away copy of the checkout: its committed and new files (what git would
add), the compiled catalogs, and a link to its .venv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkout_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    compiled = [p.relative_to(ROOT) for p in (ROOT / "portal" / "translations").rglob("*.mo")]
    return [Path(name) for name in listed if name] + compiled


def copy_checkout(target: Path) -> None:
    for relative in checkout_files():
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    (target / ".venv").symlink_to(ROOT / ".venv")


def makefile_copy(target: Path) -> Path:
    """The Makefile alone in ``target``, beside a link to the checkout's .venv and an
    empty instance/: for running one of its rules without touching the checkout."""
    shutil.copy2(ROOT / "Makefile", target / "Makefile")
    (target / ".venv").symlink_to(ROOT / ".venv")
    (target / "instance").mkdir()
    return target
