"""Free text people write is stored encrypted (portal.encryption): the client's
message, notes (the decline's personal line and cancellation reasons among them) and
the emails' content. Existing rows are encrypted with the newest key in
ENCRYPTION_KEYS; the columns are TEXT already, wide enough for the ciphertext.

Revision ID: f3b9d1e7c5a2
Revises: b3d5f7a9c1e2
Create Date: 2026-12-06 06:20:00.000000

"""
from alembic import op

from portal import encryption


# revision identifiers, used by Alembic.
revision = 'f3b9d1e7c5a2'
down_revision = 'b3d5f7a9c1e2'
branch_labels = None
depends_on = None

# As they are at this revision, whatever the models say later.
COLUMNS = [
    ('consultation_request', 'message'),
    ('request_note', 'body'),
    ('outbox_email', 'body_text'),
    ('outbox_email', 'body_html'),
    ('outbox_email', 'ics'),
]
BATCH = 1000


def upgrade():
    # The keys of the app running the migration (`flask --app portal db upgrade`).
    keys = encryption.keyring()
    report = encryption.RotationReport()
    for table, column in COLUMNS:
        encryption.recrypt(op.get_bind(), table, column, BATCH, report,
                           lambda stored, t=table, c=column: keys.encrypt(stored, t, c))


def downgrade():
    keys = encryption.keyring()
    report = encryption.RotationReport()
    for table, column in COLUMNS:
        encryption.recrypt(op.get_bind(), table, column, BATCH, report,
                           lambda stored, t=table, c=column: keys.decrypt(stored, t, c))
    if report.failed:
        raise RuntimeError("These values don't decrypt with ENCRYPTION_KEYS, so they can't "
                           "be stored as plain text again: " + ", ".join(report.failed[:10]))
