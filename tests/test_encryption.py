"""Free text at rest (portal.encryption, DESIGN "Data at rest"): what people write
through the web never reaches the database file, its WAL, a pg_dump or a backup in
clear; the pages still read it; keys rotate; a missing or wrong key stops the start
with one line; a changed or moved value does not decrypt."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from portal import ConfigurationError, create_app, encryption, readiness
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.links import manage_token
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, RequestNote
from tests.backoffice import sign_in
from tests.checkout import makefile_copy
from tests.conftest import BASE_TEST_CONFIG
from tests.factories import make_request
from tests.test_declines import PREVIEWED, decline_url
from tests.test_public_flow import book, pass_eligibility
from tests.test_readiness import fresh_database

TEST_KEY = BASE_TEST_CONFIG["ENCRYPTION_KEYS"][0]
# One word each, so a scan finds it whatever surrounds it; the name is stored plain
# (staff search it) and proves the scans would see a word that is there.
MESSAGE = "Qx7msgSentinel"
NOTE = "Qx7noteSentinel"
PERSONAL_LINE = "Qx7lineSentinel"
REASON = "Qx7reasonSentinel"
WRITTEN = (MESSAGE, NOTE, PERSONAL_LINE, REASON)
PLAIN_NAME = "Zyxquillsentinel"


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def app_with_keys(url: str, keys) -> object:
    return create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url,
                       "ENCRYPTION_KEYS": keys})


def close(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# -- through the web, then the raw storage ---------------------------------------------

def write_every_field_through_the_web(app, cast) -> tuple[int, int]:
    """The message on the public form, a staff note, a decline's personal line and a
    cancellation reason from the client's manage page: the two requests' ids."""
    public = app.test_client()
    pass_eligibility(public)
    book(public, app, message=f"Since last spring {MESSAGE} I can't sleep",
         last_name=PLAIN_NAME)
    with app.app_context():
        asked = db.session.scalar(select(ConsultationRequest.id).where(
            ConsultationRequest.last_name == PLAIN_NAME))
        declined = make_request(db.session.get(Therapist, cast.therapist_id), None,
                                first_name="Rosalind", email="rosalind@example.com").id
        db.session.commit()

    staff = app.test_client()
    sign_in(staff, cast.admin_email)
    response = staff.post(f"/admin/requests/{asked}/notes", data={"body": f"Called {NOTE}"})
    assert response.status_code == 302
    shown = staff.post(decline_url(declined), data={
        "tell_client": "yes", "personal_line": f"Take care {PERSONAL_LINE}", "note": "",
        "action": "continue"})
    [token] = PREVIEWED.findall(shown.text)
    response = staff.post(decline_url(declined), data={
        "tell_client": "yes", "personal_line": f"Take care {PERSONAL_LINE}", "note": "",
        "action": "send", "previewed": token})
    assert response.status_code == 302

    with app.app_context():
        url = f"/manage/{manage_token(db.session.get(ConsultationRequest, asked))}"
    response = public.post(url + "/cancel", data={"reason": f"Moving {REASON}"})
    assert response.status_code == 302 and response.location == url
    with app.app_context():
        assert db.session.get(ConsultationRequest, asked).status == "cancelled"
        assert db.session.get(ConsultationRequest, declined).status == "not_a_fit"
    return asked, declined


def assert_the_pages_read_it(app, cast, asked: int, declined: int) -> None:
    staff = app.test_client()
    sign_in(staff, cast.admin_email)
    page = staff.get(f"/admin/requests/{asked}").text
    assert MESSAGE in page and NOTE in page and REASON in page
    assert PERSONAL_LINE in staff.get(f"/admin/requests/{declined}").text
    # Names stay plain and searchable; the CSV carries none of the encrypted fields.
    assert f"/admin/requests/{asked}" in staff.get(f"/admin/requests?q={PLAIN_NAME}").text
    csv = staff.get("/admin/requests/export.csv")
    assert csv.status_code == 200 and PLAIN_NAME in csv.text
    with app.app_context():
        [email] = db.session.scalars(select(OutboxEmail).where(
            OutboxEmail.request_id == declined, OutboxEmail.kind == "declined"))
        assert PERSONAL_LINE in email.body_text and PERSONAL_LINE in email.body_html


def raw_storage(app, tmp_path: Path) -> dict[str, bytes]:
    """The database as an intruder would copy it: the SQLite file with its -wal and
    -shm, or a plain pg_dump; and a backup made with `flask backup`, as SQL text."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    found = {}
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            path = Path(url.database + suffix)
            if path.exists():
                found[path.name] = path.read_bytes()
        assert f"{Path(url.database).name}-wal" in found  # the WAL is scanned, not skipped
    else:
        found["pg_dump"] = subprocess.run(
            [pg_tool("pg_dump"), "--no-owner", "--dbname", libpq_url(url)],
            check=True, capture_output=True, timeout=120).stdout
    backups = tmp_path / f"backups-{secrets.token_hex(3)}"
    result = app.test_cli_runner().invoke(args=["backup", str(backups)])
    assert result.exit_code == 0, result.output
    [written] = backups.iterdir()
    found["backup"] = written.read_bytes()
    if written.suffix == ".dump":  # custom format is compressed: read it as SQL
        found["backup as SQL"] = subprocess.run(
            [pg_tool("pg_restore"), "--file", "-", str(written)],
            check=True, capture_output=True, timeout=120).stdout
    return found


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install postgresql-client)")
    return path


def libpq_url(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def assert_no_written_words(storage: dict[str, bytes]) -> None:
    for name, content in storage.items():
        for word in WRITTEN:
            assert word.encode() not in content, f"{word} in {name}"
    # The scans would see a word stored plain: the name, in the database and the backup.
    assert PLAIN_NAME.encode() in storage.get("backup as SQL", storage["backup"])
    assert any(PLAIN_NAME.encode() in content for name, content in storage.items()
               if not name.startswith("backup"))


@pytest.mark.slow
def test_what_people_write_is_never_stored_in_clear_and_keys_rotate(app, cast, tmp_path):
    asked, declined = write_every_field_through_the_web(app, cast)
    assert_the_pages_read_it(app, cast, asked, declined)
    assert_no_written_words(raw_storage(app, tmp_path))

    # A new key first, the old one after it: rotate-keys writes everything under the new.
    url, old_key, key = app.config["SQLALCHEMY_DATABASE_URI"], TEST_KEY, new_key()
    both = app_with_keys(url, [key, old_key])
    result = both.test_cli_runner().invoke(args=["rotate-keys", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "the other keys can be removed from ENCRYPTION_KEYS" in result.output
    again = both.test_cli_runner().invoke(args=["rotate-keys"])
    assert again.exit_code == 0 and "Re-encrypted 0 values" in again.output
    close(both)

    # Then the old key goes, and everything still reads.
    close(app)
    rotated = app_with_keys(url, [key])
    try:
        assert_the_pages_read_it(rotated, cast, asked, declined)
        with rotated.app_context():
            assert readiness.check_encryption(rotated.config, database_ok=True) == []
        assert_no_written_words(raw_storage(rotated, tmp_path))
    finally:
        close(rotated)
    # The old key alone is now the wrong key: refused at start-up, not mid-page.
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS lacks the key"):
        app_with_keys(url, [old_key])


# -- start-up -------------------------------------------------------------------------

@pytest.mark.parametrize("keys", [None, "", " , ", []])
def test_no_key_refuses_to_start_with_one_line(keys):
    with pytest.raises(ConfigurationError) as refused:
        create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "ENCRYPTION_KEYS": keys})
    message = str(refused.value)
    assert message.startswith("ENCRYPTION_KEYS is not set") and "\n" not in message


@pytest.mark.parametrize("keys", [
    ["not base64 at all!"],
    [base64.b64encode(secrets.token_bytes(16)).decode()],  # AES-128: too short
    [TEST_KEY, base64.b64encode(secrets.token_bytes(33)).decode()],
    [TEST_KEY, 12345],
])
def test_a_malformed_key_refuses_to_start_naming_it(keys):
    with pytest.raises(ConfigurationError) as refused:
        create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "ENCRYPTION_KEYS": keys})
    message = str(refused.value)
    assert f"ENCRYPTION_KEYS entry {len(keys)} of {len(keys)}" in message
    assert "\n" not in message and str(keys[-1]) not in message  # no key is ever printed


def test_flask_check_without_a_key_says_so_in_one_line(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
           "FLASK_SECRET_KEY": secrets.token_hex(32), "FLASK_ENCRYPTION_KEYS": "",
           "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "check"],
                            env=env, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ENCRYPTION_KEYS is not set")


def test_keys_come_from_the_environment_newest_first(monkeypatch):
    first, second = new_key(), base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("FLASK_ENCRYPTION_KEYS", f"{first}, {second}")
    config = {k: v for k, v in BASE_TEST_CONFIG.items() if k != "ENCRYPTION_KEYS"}
    app = create_app({**config, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        keys = encryption.keyring()
    assert [key.id for key in keys.keys] == [
        encryption.key_id(base64.b64decode(first)),
        encryption.key_id(base64.urlsafe_b64decode(second))]
    monkeypatch.setenv("FLASK_ENCRYPTION_KEYS", f'["{second}"]')  # JSON works too
    app = create_app({**config, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        assert len(encryption.keyring().keys) == 1


def test_a_wrong_key_refuses_to_start_instead_of_failing_pages(database_url, app):
    with app.app_context():
        make_request(message="written with the suite's key")
        db.session.commit()
    close(app)
    with pytest.raises(ConfigurationError) as refused:
        app_with_keys(database_url, [new_key()])
    message = str(refused.value)
    assert message.startswith("ENCRYPTION_KEYS lacks the key") and "\n" not in message
    assert TEST_KEY not in message


# -- the binding ------------------------------------------------------------------------

def stored(app, table: str, column: str, row_id: int) -> str:
    with app.app_context():
        return db.session.execute(text(f"SELECT {column} FROM {table} WHERE id = :id"),  # noqa: S608
                                  {"id": row_id}).scalar_one()


def store(app, table: str, column: str, row_id: int, value: str) -> None:
    with app.app_context():
        db.session.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :id"),  # noqa: S608
                           {"v": value, "id": row_id})
        db.session.commit()


def read_note(app, note_id: int) -> str:
    with app.app_context():
        try:
            return db.session.get(RequestNote, note_id).body
        finally:
            db.session.rollback()
            db.session.expunge_all()


def test_a_changed_or_moved_value_does_not_decrypt(app):
    with app.app_context():
        consultation = make_request(message="what the client wrote")
        note = RequestNote(request_id=consultation.id, body="what staff wrote")
        db.session.add(note)
        db.session.commit()
        request_id, note_id = consultation.id, note.id
    ciphertext = stored(app, "request_note", "body", note_id)
    assert ciphertext.startswith("gcm1:") and "staff" not in ciphertext
    assert read_note(app, note_id) == "what staff wrote"

    # One character of the ciphertext changed.
    head, sealed = ciphertext.rsplit(":", 1)
    raw = bytearray(base64.b64decode(sealed))
    raw[-1] ^= 1
    store(app, "request_note", "body", note_id, f"{head}:{base64.b64encode(raw).decode()}")
    with pytest.raises(encryption.UndecryptableValue, match="request_note.body .*changed"):
        read_note(app, note_id)

    # The client's message, moved into the note: the same key, another column.
    store(app, "request_note", "body", note_id,
          stored(app, "consultation_request", "message", request_id))
    with pytest.raises(encryption.UndecryptableValue, match="copied from another column"):
        read_note(app, note_id)

    # Plain text put in its place is refused too.
    store(app, "request_note", "body", note_id, "what staff wrote")
    with pytest.raises(encryption.UndecryptableValue, match="not encrypted"):
        read_note(app, note_id)


def test_each_value_gets_its_own_nonce():
    keys = encryption.Keyring([base64.b64decode(TEST_KEY)])
    one = keys.encrypt("same words", "request_note", "body")
    two = keys.encrypt("same words", "request_note", "body")
    assert one != two
    assert keys.decrypt(one, "request_note", "body") == "same words"


# -- `flask check` ------------------------------------------------------------------------

def test_check_fails_without_a_key_and_on_values_no_key_reads(app):
    assert readiness.check_encryption({"ENCRYPTION_KEYS": None}, database_ok=False)[0].id \
        == "encryption.E001"
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        make_request(message="under the suite's key")
        db.session.commit()
    close(app)
    key = new_key()
    both = app_with_keys(url, [key, TEST_KEY])
    with both.app_context():
        make_request(message="under the new key")  # the newest value: the start is fine
        db.session.commit()
    close(both)
    too_early = app_with_keys(url, [key])  # the old key removed before rotate-keys
    try:
        with too_early.app_context():
            [problem] = readiness.check_encryption(too_early.config, database_ok=True)
        assert problem.id == "encryption.E002" and "1 stored value can't be decrypted" \
            in problem.message
        assert "rotate-keys" in problem.fix
    finally:
        close(too_early)


# -- the migration ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_encrypts_existing_rows_and_back(kind, tmp_path):
    if kind == "postgresql" and not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set")
    with fresh_database(kind, tmp_path) as url:
        app = app_with_keys(url, [TEST_KEY])
        try:
            with app.app_context():
                upgrade()
                consultation = make_request(message="from before")
                db.session.add(RequestNote(request_id=consultation.id, body="a note"))
                db.session.add(OutboxEmail(key="k", kind="confirmation", request_id=consultation.id,
                                           recipient="a@example.com", subject="s",
                                           body_text="Hello", body_html=None, ics="BEGIN",
                                           message_id="<m@example.com>"))
                db.session.commit()
                downgrade(revision="a7b2c4d6e8f0")  # as the database was before
                raw = db.session.execute(text(
                    "SELECT message FROM consultation_request")).scalar_one()
                assert raw == "from before"
                db.session.remove()
                upgrade()
                for column, table in (("message", "consultation_request"),
                                      ("body", "request_note"), ("body_text", "outbox_email"),
                                      ("ics", "outbox_email")):
                    value = db.session.execute(text(
                        f"SELECT {column} FROM {table}")).scalar_one()  # noqa: S608
                    assert value.startswith("gcm1:"), (table, column)
                assert db.session.execute(text(
                    "SELECT body_html FROM outbox_email")).scalar_one() is None
                assert db.session.scalar(select(ConsultationRequest.message)) == "from before"
                assert db.session.scalar(select(RequestNote.body)) == "a note"
                assert db.session.scalar(select(OutboxEmail.ics)) == "BEGIN"
        finally:
            close(app)


# -- make run -------------------------------------------------------------------------------

def test_make_gives_a_new_and_an_older_instance_config_an_encryption_key(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    makefile_copy(tmp_path)
    written = tmp_path / "instance" / "config.py"

    def make() -> dict:
        subprocess.run(["make", "-s", "instance/config.py"], cwd=tmp_path, check=True,
                       capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        settings: dict = {}
        exec(written.read_text(), settings)  # noqa: S102 - the file make just wrote
        return settings

    fresh = make()
    assert encryption.parse_keys(fresh["ENCRYPTION_KEYS"])
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert make()["ENCRYPTION_KEYS"] == fresh["ENCRYPTION_KEYS"]  # kept, never replaced

    # A previous clone's config: a secret key alone, without a final newline.
    written.write_text("SECRET_KEY = 'kept-as-it-was-0123456789abcdef0123'")
    older = make()
    assert older["SECRET_KEY"] == "kept-as-it-was-0123456789abcdef0123"
    assert len(encryption.parse_keys(older["ENCRYPTION_KEYS"])) == 1
