"""deploy/: the systemd units and the environment file hold together (cheap checks that
always run), and systemd itself accepts the units where it is installed."""

import base64
import os
import re
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest

from portal import config as defaults
from tests.conftest import make_app
from tests.deploy import DEPLOY, ENV_FILE, INSTALL_DIR, ROOT, UNITS, read_env, read_unit

SERVICES = sorted(UNITS.glob("*.service"))
TIMERS = sorted(UNITS.glob("*.timer"))
HARDENING = {
    "User": "portal",
    "Group": "portal",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "EnvironmentFile": "/etc/portal/portal.env",
    "WorkingDirectory": INSTALL_DIR,
    "CapabilityBoundingSet": "",
}


def test_the_expected_units_are_there():
    names = {path.name for path in UNITS.iterdir()}
    assert names == {
        "portal-web.socket", "portal-web.service", "portal-outbox@.service",
        "portal-reminders.service", "portal-reminders.timer",
        "portal-purge.service", "portal-purge.timer",
        "portal-backup.service", "portal-backup.timer",
        "portal-calendars.service", "portal-calendars.timer",
    }


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_every_service_runs_hardened_as_the_portal_user(path):
    service = read_unit(path)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{path.name}: {key}"
    writable = service["ReadWritePaths"].split()
    assert writable[0] == f"{INSTALL_DIR}/instance"
    assert service["UMask"] == "0077"


def flask_commands(path: Path) -> list[str]:
    service = read_unit(path)["Service"]
    return [service[key] for key in ("ExecStart", "ExecStartPost") if key in service]


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_every_command_is_one_the_venv_and_the_portal_have(path):
    env = read_env()
    app = make_app("sqlite://")
    for line in flask_commands(path):
        argv = shlex.split(line)
        program = argv[0]
        if not program.startswith(f"{INSTALL_DIR}/.venv/bin/"):
            assert program.startswith("/usr/bin/"), line
            continue
        assert (ROOT / program.removeprefix(f"{INSTALL_DIR}/")).exists(), program
        for word in argv:  # ${NAME} comes from the environment file
            for name in (part.split("}")[0] for part in word.split("${")[1:]):
                assert name in env, f"{path.name}: {name} is not in {ENV_FILE.name}"
        if program.endswith("/gunicorn"):
            assert argv[-1] == "portal:create_app()"
            assert "--bind" not in argv, "the socket comes from portal-web.socket"
            continue
        assert argv[1:3] == ["--app", "portal"], line
        group: click.Command = app.cli
        ctx = click.Context(group)
        for word in argv[3:]:
            if word.startswith("-") or not isinstance(group, click.Group):
                break
            found = group.get_command(ctx, word)
            assert found is not None, f"{path.name}: no command {word!r}"
            group = found


@pytest.mark.parametrize("path", TIMERS, ids=lambda p: p.name)
def test_every_timer_catches_up_after_downtime_and_starts_a_oneshot(path):
    timer = read_unit(path)
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = read_unit(path.with_suffix(".service"))
    assert service["Service"]["Type"] == "oneshot"


def test_calendars_are_read_well_within_the_stale_limit():
    """Every four minutes, so that one failed read or a late start never makes a
    therapist's calendar stale (CALENDAR_STALE_MINUTES) and hide their times."""
    timer = read_unit(UNITS / "portal-calendars.timer")["Timer"]
    assert timer["OnCalendar"] == "*:0/4"
    assert defaults.CALENDAR_STALE_MINUTES > 3 * 4  # two missed reads still leave one
    service = read_unit(UNITS / "portal-calendars.service")["Service"]
    assert service["ExecStart"].endswith("flask --app portal calendars sync")
    readme = (DEPLOY / "README.md").read_text()
    assert "systemctl enable --now portal-calendars.timer" in readme


def test_the_web_service_takes_its_socket_from_systemd_for_nginx_only():
    socket = read_unit(UNITS / "portal-web.socket")["Socket"]
    assert socket["ListenStream"] == "/run/portal/web.sock"
    assert (socket["SocketUser"], socket["SocketMode"]) == ("www-data", "0600")
    web = read_unit(UNITS / "portal-web.service")
    assert web["Unit"]["Requires"] == "portal-web.socket"
    assert web["Service"]["Type"] == "notify"
    site = (DEPLOY / "nginx" / "portal.conf").read_text()
    readme = (DEPLOY / "README.md").read_text()
    assert "@UPSTREAM@ = unix:/run/portal/web.sock" in site
    assert "UPSTREAM=unix:/run/portal/web.sock" in readme


def test_two_mail_senders_are_enabled():
    readme = (DEPLOY / "README.md").read_text()
    assert "portal-outbox@1.service portal-outbox@2.service" in readme
    sender = read_unit(UNITS / "portal-outbox@.service")["Service"]
    assert sender["KillSignal"] == "SIGINT"  # `outbox work` stops cleanly on it
    assert sender["Restart"] == "always"


def test_the_environment_file_names_only_real_settings():
    env = read_env()
    for key in env:
        if key.startswith("FLASK_"):
            assert hasattr(defaults, key.removeprefix("FLASK_")), key
        else:
            assert key.startswith("PORTAL_"), key
    # Empty until the administrator sets it: the portal refuses to start without one.
    assert env["FLASK_SECRET_KEY"] == ""
    assert env["FLASK_REQUIRE_MFA"] == "true"
    assert env["FLASK_PROXY_FIX_X_FOR"] == env["FLASK_PROXY_FIX_X_PROTO"] == "1"


def test_a_shell_reads_the_environment_file_as_systemd_does():
    script = f"set -a; . {shlex.quote(str(ENV_FILE))}; set +a; env -0"
    shell = subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin"},
                           capture_output=True, check=True, timeout=30)
    seen = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if item)
    assert {key: seen.get(key) for key in read_env()} == read_env()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed on this machine")
def test_systemd_accepts_the_units(tmp_path):
    # The units as installed, pointing at this checkout so their programs exist.
    for path in UNITS.iterdir():
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALL_DIR, str(ROOT)))
    names = [p.name for p in sorted(tmp_path.iterdir()) if not p.name.endswith("@.service")]
    names += ["portal-outbox@1.service", "portal-outbox@2.service"]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *names],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_the_nightly_backup_keeps_the_newest_copies_and_nothing_else(tmp_path):
    """The backup unit's own command lines, run in order: after many nights there
    are PORTAL_BACKUP_KEEP backups, and a file the administrator put there stays."""
    database = tmp_path / "portal.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE night (n INTEGER)")
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "before-the-upgrade.sqlite3").write_text("kept by hand")
    assert int(read_env()["PORTAL_BACKUP_KEEP"]) >= 7
    keep = 2  # fewer nights to run than the shipped two weeks
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
           **read_env(), "PORTAL_BACKUP_KEEP": str(keep),
           "FLASK_SECRET_KEY": secrets.token_hex(32),
           "FLASK_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
           "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}
    service = read_unit(UNITS / "portal-backup.service")["Service"]
    lines = [service[key] for key in ("ExecStartPre", "ExecStart", "ExecStartPost")
             if key in service]
    for _night in range(keep + 2):
        for line in lines:
            line = line.replace("/var/backups/portal", str(backups))
            line = line.replace(f"{INSTALL_DIR}/.venv/bin/flask", f"{sys.executable} -m flask")
            # systemd puts ${NAME} from the environment file into the command line.
            argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word)
                    for word in shlex.split(line)]
            subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True,
                           timeout=60)
    names = sorted(path.name for path in backups.iterdir())
    assert "before-the-upgrade.sqlite3" in names
    assert len([name for name in names if name.startswith("portal-backup-")]) == keep


def test_the_readme_installs_the_server_only_and_reloads_nginx_on_renewal():
    readme = (DEPLOY / "README.md").read_text()
    installs = [line for line in readme.splitlines() if "pip install" in line]
    assert installs and all("-e '.[server]'" in line for line in installs), installs
    assert "make install" not in readme.replace("not `make install`", "")
    certbot = readme[readme.index("certbot certonly"):].split("```")[0]
    assert '--deploy-hook "systemctl reload nginx"' in certbot
