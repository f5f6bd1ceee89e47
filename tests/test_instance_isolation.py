"""The suite never reads the checkout's instance/ folder.

`make run` leaves a secret key in instance/config.py, a migrated SQLite database and
the demo's mail in instance/. A newcomer runs `make run`, then `make test`: the tests
that check what the portal does *without* such a configuration must still pass. This
test makes a throw-away copy of the checkout, fills its instance/ as `make run` does
(the same Makefile rule, the same commands), and runs the configuration-sensitive
tests inside that copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.checkout import copy_checkout

ROOT = Path(__file__).resolve().parent.parent
# The tests whose outcome depends on configuration the instance folder could carry: a
# secret key (refused without one), the production checks (defaults fail), the
# default SQLite file and the mail sink folder.
SENSITIVE = [
    "tests/test_foundation.py",
    "tests/test_readiness.py",
    "tests/test_mail_transport.py",
]


def without_suite_instance() -> dict[str, str]:
    """This process's environment less the suite's own instance folder and the
    PostgreSQL run (the copy's instance/ is what is at stake, on SQLite)."""
    return {k: v for k, v in os.environ.items()
            if k not in {"PORTAL_INSTANCE_PATH", "TEST_DATABASE_URL", "PYTEST_ADDOPTS"}
            and not k.startswith("FLASK_")}


def fill_instance_as_make_run_does(copy: Path, env: dict[str, str]) -> Path:
    instance = copy / "instance"
    subprocess.run(["make", "-s", "instance/config.py"], cwd=copy, env=env, check=True,
                   capture_output=True)
    flask = [str(copy / ".venv" / "bin" / "flask"), "--app", "portal"]
    for command in (["db", "upgrade"], ["seed-demo"]):
        done = subprocess.run(flask + command, cwd=copy, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    (instance / "mail").mkdir(exist_ok=True)
    (instance / "mail" / "20261206-000000-confirmation-demo.eml").write_text(
        "Subject: Your consultation request\n\nA message the demo sent.\n")
    return instance


def test_a_make_run_instance_folder_changes_no_test_outcome(tmp_path):
    copy = tmp_path / "checkout"
    copy_checkout(copy)
    env = without_suite_instance()
    instance = fill_instance_as_make_run_does(copy, env)
    # What `make run` leaves: a key, a database with the demo in it, a mail file.
    assert "SECRET_KEY" in (instance / "config.py").read_text()
    assert (instance / "portal.sqlite3").stat().st_size > 0
    assert list((instance / "mail").glob("*.eml"))
    left = sorted(str(p.relative_to(instance)) for p in instance.rglob("*"))

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not browser",
         *SENSITIVE],
        cwd=copy, env=env, capture_output=True, text=True, timeout=540,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # Nothing the tests did wrote into the copy's instance/: it holds what make run left.
    assert sorted(str(p.relative_to(instance)) for p in instance.rglob("*")) == left
