"""Free a not-a-fit request's time; keep queued notices of deleted requests;
bytewise search keys on PostgreSQL; index the audit log's actor.

Revision ID: c9f6082ed282
Revises: 61ed03aaeb13
Create Date: 2026-11-27 08:35:34.808285

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c9f6082ed282'
down_revision = '61ed03aaeb13'
branch_labels = None
depends_on = None

HOLDS_SLOT = "status NOT IN ('cancelled', 'not_a_fit') AND slot_start IS NOT NULL"
HELD_BEFORE = "status != 'cancelled' AND slot_start IS NOT NULL"
SEARCH_KEYS = {"first_name_normalised": 80, "last_name_normalised": 80, "email_normalised": 254}


def _booking_index(batch_op, where):
    batch_op.create_index('uq_booking_therapist_slot', ['therapist_id', 'slot_start'],
                          unique=True, sqlite_where=sa.text(where),
                          postgresql_where=sa.text(where))


def upgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_actor'), ['actor'], unique=False)

    with op.batch_alter_table('outbox_email', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_email_request_id_consultation_request'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_outbox_email_request_id_consultation_request'), 'consultation_request', ['request_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_index('uq_booking_therapist_slot')
        _booking_index(batch_op, HOLDS_SLOT)

    if op.get_bind().dialect.name == 'postgresql':
        for column, length in SEARCH_KEYS.items():
            op.execute(f'ALTER TABLE consultation_request ALTER COLUMN {column} '
                       f'TYPE VARCHAR({length}) COLLATE "C"')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for column, length in SEARCH_KEYS.items():
            op.execute(f'ALTER TABLE consultation_request ALTER COLUMN {column} '
                       f'TYPE VARCHAR({length}) COLLATE "default"')

    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_index('uq_booking_therapist_slot')
        _booking_index(batch_op, HELD_BEFORE)

    with op.batch_alter_table('outbox_email', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_email_request_id_consultation_request'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_outbox_email_request_id_consultation_request'), 'consultation_request', ['request_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_actor'))
