"""Free text people write, encrypted at rest (DESIGN, "Data at rest").

The client's message, staff notes (the decline's personal line and a client's
cancellation reason are notes too) and the emails made from them are stored as
AES-GCM ciphertext, so a copied database file, a ``pg_dump`` or a backup shows no
client's words. Names, emails and phones stay plaintext: staff search them.

A stored value reads ``gcm1:<key id>:<base64 of nonce + ciphertext>``. The key id
names the key it was written with (an HMAC of the key, so it tells nothing about
it), and the table and column are the associated data: a value copied into
another column, or changed by one bit, does not decrypt. Keys come from
``ENCRYPTION_KEYS``, newest first: new values use the first, any listed key reads.
``flask --app portal rotate-keys`` (:func:`rotate`) writes everything again under
the newest key, after which the others can be removed.

Values are encrypted and decrypted by the :class:`EncryptedText` column type, so
the domain code reads and writes plain strings. Such a column can't be searched
or compared in SQL: nothing does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app
from sqlalchemy import Integer, Text, bindparam, column, func, select, table, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeDecorator

CONFIG_KEY = "ENCRYPTION_KEYS"
EXTENSION = "portal.encryption"
PREFIX = "gcm1"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_LENGTH = 8
HEAD_LENGTH = len(PREFIX) + KEY_ID_LENGTH + 2  # "gcm1:<key id>:"
ROTATE_BATCH = 500
HOW_TO_MAKE_A_KEY = (
    "python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'")


class EncryptionKeyError(ValueError):
    """ENCRYPTION_KEYS is missing, malformed, or lacks the key the data was written
    with. The message is one line that names the setting and how to fix it."""


class UndecryptableValue(RuntimeError):
    """A stored value that no key in ENCRYPTION_KEYS decrypts for its column: written
    with a key no longer listed, changed, or moved from another column."""


@dataclass(frozen=True)
class Key:
    id: str
    aead: AESGCM = field(repr=False)


def key_id(raw: bytes) -> str:
    """Eight characters that name a key in stored values without telling anything
    about it."""
    digest = hmac.new(raw, b"portal encryption key id", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:6]).decode("ascii")


def parse_keys(setting) -> list[bytes]:
    """ENCRYPTION_KEYS as raw keys, newest first: a list, or one string of keys
    separated by commas or spaces (``FLASK_ENCRYPTION_KEYS``); each the base64 of 32
    random bytes."""
    if isinstance(setting, str):
        entries = [entry for entry in re.split(r"[\s,]+", setting) if entry]
    elif isinstance(setting, list | tuple):
        entries = list(setting)
    else:
        entries = []
    if not entries:
        raise EncryptionKeyError(
            f"{CONFIG_KEY} is not set: the portal stores messages and notes encrypted "
            f"and needs a key. Set FLASK_{CONFIG_KEY} to the output of `{HOW_TO_MAKE_A_KEY}` "
            "(the same for every worker and host; keep a copy with the backups).")
    keys = []
    for position, entry in enumerate(entries, start=1):
        raw = _decode_key(entry)
        if raw is None:
            raise EncryptionKeyError(
                f"{CONFIG_KEY} entry {position} of {len(entries)} is not the base64 of a "
                f"{KEY_BYTES}-byte key. Make keys with `{HOW_TO_MAKE_A_KEY}`.")
        keys.append(raw)
    return keys


def _decode_key(entry) -> bytes | None:
    if not isinstance(entry, str):
        return None
    text = entry.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_BYTES else None


def associated_data(table_name: str, column_name: str) -> bytes:
    return f"portal:{table_name}.{column_name}".encode("ascii")


class Keyring:
    """The configured keys: the first encrypts, any of them decrypts."""

    def __init__(self, raw_keys: Iterable[bytes]):
        self.keys = [Key(key_id(raw), AESGCM(raw)) for raw in raw_keys]
        if not self.keys:
            raise EncryptionKeyError(f"{CONFIG_KEY} holds no key.")
        self.by_id = {key.id: key for key in reversed(self.keys)}

    @property
    def newest(self) -> Key:
        return self.keys[0]

    def encrypt(self, plaintext: str, table_name: str, column_name: str) -> str:
        key = self.newest
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode("utf-8"),
                                  associated_data(table_name, column_name))
        return f"{PREFIX}:{key.id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, table_name: str, column_name: str) -> str:
        where = f"{table_name}.{column_name}"
        kid = stored_key_id(stored)
        if kid is None:
            raise UndecryptableValue(f"A value in {where} is not encrypted (or is damaged).")
        key = self.by_id.get(kid)
        if key is None:
            raise UndecryptableValue(
                f"A value in {where} was encrypted with key {kid}, which is not in "
                f"{CONFIG_KEY}: add that key back (after the newest).")
        try:
            sealed = base64.b64decode(stored.split(":", 2)[2], validate=True)
            plaintext = key.aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                         associated_data(table_name, column_name))
        except (binascii.Error, ValueError, InvalidTag):
            raise UndecryptableValue(
                f"A value in {where} does not decrypt with its key {kid}: it was changed, "
                "or copied from another column.") from None
        return plaintext.decode("utf-8")


def stored_key_id(stored: str) -> str | None:
    """The id of the key a stored value was written with; None if it isn't one."""
    parts = stored.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != KEY_ID_LENGTH:
        return None
    return parts[1]


def init_app(app: Flask) -> None:
    """Read ENCRYPTION_KEYS (raising :class:`EncryptionKeyError` when it is missing or
    malformed) and keep the keys for the column type."""
    app.extensions[EXTENSION] = Keyring(parse_keys(app.config.get(CONFIG_KEY)))


def keyring() -> Keyring:
    return current_app.extensions[EXTENSION]


class EncryptedText(TypeDecorator):
    """Text stored as AES-GCM ciphertext bound to its table and column."""

    impl = Text
    cache_ok = True

    def __init__(self, table_name: str, column_name: str):
        super().__init__()
        self.table_name = table_name
        self.column_name = column_name

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return keyring().encrypt(str(value), self.table_name, self.column_name)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return keyring().decrypt(value, self.table_name, self.column_name)


def encrypted_columns(metadata) -> list[tuple[str, str]]:
    """Every (table, column) of ``metadata`` stored with :class:`EncryptedText`."""
    return [(t.name, c.name) for t in metadata.sorted_tables for c in t.columns
            if isinstance(c.type, EncryptedText)]


def _raw(table_name: str, column_name: str):
    """The column as stored (ciphertext), for reading and writing without the type."""
    return table(table_name, column("id", Integer), column(column_name, Text))


# -- start-up and `flask check` ----------------------------------------------

def newest_values_problem(engine: Engine, keys: Keyring, columns) -> str | None:
    """Whether the newest stored value of each encrypted column was written with a
    listed key: a different key altogether shows at once, without reading every row.
    Skipped (None) when the database can't be read yet: no file, no tables, down."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not os.path.exists(url.database):
        return None  # connecting would create an empty file
    try:
        with engine.connect() as connection:
            for table_name, column_name in columns:
                raw = _raw(table_name, column_name)
                value = connection.scalar(
                    select(raw.c[column_name]).where(raw.c[column_name].is_not(None))
                    .order_by(raw.c.id.desc()).limit(1))
                kid = stored_key_id(value) if value else None
                if kid is not None and kid not in keys.by_id:
                    return (f"{CONFIG_KEY} lacks the key the database's data is encrypted "
                            f"with (key {kid}, in {table_name}.{column_name}): put that key "
                            f"in {CONFIG_KEY} (newest first), or point the portal at the "
                            "database these keys belong to.")
    except SQLAlchemyError:
        return None
    return None


def unreadable_key_ids(connection, keys: Keyring, columns) -> dict[str, int]:
    """How many stored values each unlisted key id holds. Every row is looked at, but
    only the head of each value leaves the database."""
    missing: dict[str, int] = {}
    for table_name, column_name in columns:
        raw = _raw(table_name, column_name)
        head = func.substr(raw.c[column_name], 1, HEAD_LENGTH)
        for value, count in connection.execute(
                select(head, func.count()).where(raw.c[column_name].is_not(None))
                .group_by(head)):
            kid = stored_key_id(value) or "(not encrypted)"
            if kid not in keys.by_id:
                missing[kid] = missing.get(kid, 0) + count
    return missing


# -- rotation ----------------------------------------------------------------

@dataclass
class RotationReport:
    rewritten: int = 0
    current: int = 0
    failed: list[str] = field(default_factory=list)


def rotate(engine: Engine, keys: Keyring, columns, batch: int = ROTATE_BATCH,
           report: RotationReport | None = None) -> RotationReport:
    """Write every stored value again under the newest key, ``batch`` rows per short
    write transaction, so the site keeps working meanwhile. A row changed since it
    was read is left as it is (the change was written under the newest key). Values
    no listed key decrypts are left and named in ``failed``."""
    report = report or RotationReport()
    for table_name, column_name in columns:
        recrypt(engine, table_name, column_name, batch, report,
                lambda stored, t=table_name, c=column_name: (
                    None if stored_key_id(stored) == keys.newest.id
                    else keys.encrypt(keys.decrypt(stored, t, c), t, c)))
    return report


def recrypt(engine_or_connection, table_name: str, column_name: str, batch: int,
            report: RotationReport, transform) -> None:
    """Apply ``transform`` (stored value -> new stored value, or None to keep it) to
    every non-NULL value of one column, in batches by id."""
    raw = _raw(table_name, column_name)
    value = raw.c[column_name]
    change = (update(raw).where(raw.c.id == bindparam("row_id"), value == bindparam("old"))
              .values({column_name: bindparam("new")}))
    last_id = 0
    while True:
        with _write_transaction(engine_or_connection) as connection:
            rows = connection.execute(
                select(raw.c.id, value).where(raw.c.id > last_id, value.is_not(None))
                .order_by(raw.c.id).limit(batch)).all()
            if not rows:
                return
            changes = []
            for row_id, stored in rows:
                try:
                    new = transform(stored)
                except UndecryptableValue:
                    report.failed.append(f"{table_name}.{column_name} id {row_id}")
                    continue
                if new is None:
                    report.current += 1
                else:
                    changes.append({"row_id": row_id, "old": stored, "new": new})
            if changes:
                connection.execute(change, changes)
                report.rewritten += len(changes)
            last_id = rows[-1][0]


@contextmanager
def _write_transaction(engine_or_connection):
    """A batch's transaction: its own (BEGIN IMMEDIATE on SQLite) given an engine; the
    caller's given a connection (a migration runs in one transaction)."""
    if not isinstance(engine_or_connection, Engine):
        yield engine_or_connection
        return
    with engine_or_connection.connect().execution_options(sqlite_immediate=True) as connection, \
            connection.begin():
        yield connection
