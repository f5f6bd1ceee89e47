"""Verify the email before a request is final (pending requests and their codes, an
anonymous count of dropped ones); no phone uniqueness (it told strangers who had a
request); a request's emails are deleted with it.

Revision ID: b0c48314ca03
Revises: c9f6082ed282
Create Date: 2026-12-02 13:00:56.643875

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b0c48314ca03'
down_revision = 'c9f6082ed282'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('anonymous_count',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'kind', name=op.f('pk_anonymous_count'))
    )
    op.create_table('email_verification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('wrong_tries', sa.Integer(), nullable=False),
    sa.Column('sends', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('already_booked', sa.Boolean(), nullable=False),
    sa.Column('duplicate_of_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['duplicate_of_id'], ['consultation_request.id'], name=op.f('fk_email_verification_duplicate_of_id_consultation_request'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['consultation_request.id'], name=op.f('fk_email_verification_request_id_consultation_request'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_verification')),
    sa.UniqueConstraint('request_id', name=op.f('uq_email_verification_request_id'))
    )
    with op.batch_alter_table('email_verification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_verification_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_index('uq_open_request_phone')

    with op.batch_alter_table('outbox_email', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_email_request_id_consultation_request'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_outbox_email_request_id_consultation_request'), 'consultation_request', ['request_id'], ['id'], ondelete='CASCADE')



OPEN = "status IN ('new', 'contacted', 'scheduled')"


def downgrade():
    # Earlier code knows no pending requests: they go (with their codes, by cascade).
    op.execute("DELETE FROM consultation_request WHERE status = 'pending'")
    with op.batch_alter_table('outbox_email', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_email_request_id_consultation_request'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_outbox_email_request_id_consultation_request'), 'consultation_request', ['request_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        # Fails if two open requests now share a phone: staff resolve those first.
        batch_op.create_index('uq_open_request_phone', ['phone'], unique=True,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))

    with op.batch_alter_table('email_verification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_verification_expires_at'))

    op.drop_table('email_verification')
    op.drop_table('anonymous_count')
