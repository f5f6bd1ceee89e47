"""A built wheel is a whole portal: its pages, styles, catalogs and migrations come
with it. The wheel is built from a copy of the checkout, installed into a fresh
virtual environment outside it, and run from a folder that knows nothing of the
checkout: it migrates a database, serves the landing page and its stylesheet, and
renders a confirmation email."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from tests.checkout import ROOT, copy_checkout

# Run inside the installed portal: prints what it saw as JSON.
SERVE_AND_RENDER = """
import json, sys
from pathlib import Path

import portal
from portal import create_app
from portal.messages import notifications
from portal.extensions import db
from portal.models import ConsultationRequest

app = create_app({"PUBLIC_BASE_URL": "https://portal.example.com"})
client = app.test_client()
landing = client.get("/")
css = client.get("/static/css/portal.css")
with app.app_context():
    consultation = db.session.scalars(db.select(ConsultationRequest)).first()
    [confirmation, *_] = notifications.queue_request_received(consultation)
    email = confirmation.body_text + confirmation.body_html
    db.session.rollback()
print(json.dumps({
    "package": portal.__file__, "prefix": sys.prefix,
    "templates": app.template_folder, "static": app.static_folder,
    "landing": [landing.status_code, landing.get_data(as_text=True)],
    "css": [css.status_code, len(css.data)],
    "email": [confirmation.kind, confirmation.subject, email],
}))
"""


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def build_wheel(tmp_path: Path) -> Path:
    source, dist = tmp_path / "source", tmp_path / "dist"
    copy_checkout(source)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--wheel-dir", dist, source], cwd=tmp_path)
    [wheel] = dist.glob("*.whl")
    return wheel


def fresh_environment(tmp_path: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed; the portal's dependencies
    are read from this suite's environment (nothing is downloaded), the portal itself
    only from the wheel."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-index", wheel], cwd=tmp_path)
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=tmp_path).strip())
    # A plain path line: this environment's site-packages, not its .pth files (which
    # would put the checkout's editable portal back on the path).
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_a_built_wheel_serves_pages_and_renders_emails_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for wanted in ("portal/templates/base.html", "portal/templates/email/base.html",
                   "portal/static/css/portal.css", "portal/migrations/alembic.ini",
                   "portal/migrations/env.py", "portal/data/common_passwords.txt",
                   "portal/translations/es/LC_MESSAGES/messages.mo"):
        assert wanted in names, wanted
    assert any(n.startswith("portal/migrations/versions/") for n in names)

    python = fresh_environment(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PYTHON"))}
    env.update(PORTAL_INSTANCE_PATH=str(elsewhere / "instance"),
               FLASK_SECRET_KEY=secrets.token_hex(32),
               FLASK_ENCRYPTION_KEYS=base64.b64encode(secrets.token_bytes(32)).decode())
    flask = [python, "-m", "flask", "--app", "portal"]
    run([*flask, "db", "upgrade"], cwd=elsewhere, env=env)  # the packaged migrations
    run([*flask, "seed-demo", "--requests", "1"], cwd=elsewhere, env=env)

    seen = json.loads(run([python, "-c", SERVE_AND_RENDER], cwd=elsewhere, env=env))
    for folder in ("package", "templates", "static"):
        assert Path(seen[folder]).is_relative_to(seen["prefix"]), (folder, seen[folder])
        assert not Path(seen[folder]).is_relative_to(ROOT), (folder, seen[folder])
    status, landing = seen["landing"]
    assert status == 200 and "988" in landing and "/static/css/portal.css" in landing
    assert seen["css"][0] == 200 and seen["css"][1] > 1000
    kind, subject, email = seen["email"]
    assert kind == "confirmation" and subject and "988" in email
