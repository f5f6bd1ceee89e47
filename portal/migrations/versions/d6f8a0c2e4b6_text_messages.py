"""Text messages (DESIGN v3): each request's consent to texts and its events, the
numbers that replied STOP, and each text's delivery state. Numbers are stored
encrypted, with a keyed hash for lookups.

Revision ID: d6f8a0c2e4b6
Revises: c4e6a8b0d2f4
Create Date: 2026-12-06 09:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd6f8a0c2e4b6'
down_revision = 'c4e6a8b0d2f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'text_consent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('phone', sa.Text(), nullable=False),
        sa.Column('phone_hash', sa.String(length=64), nullable=False),
        sa.Column('wording_version', sa.String(length=20), nullable=False),
        sa.Column('given_at', sa.DateTime(), nullable=False),
        sa.Column('withdrawn_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['request_id'], ['consultation_request.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_id'),
    )
    op.create_index('ix_text_consent_phone_hash', 'text_consent', ['phone_hash'])
    op.create_table(
        'text_consent_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('wording_version', sa.String(length=20), nullable=True),
        sa.Column('phone', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['request_id'], ['consultation_request.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_text_event_request', 'text_consent_event', ['request_id', 'at'])
    op.create_index('ix_text_consent_event_at', 'text_consent_event', ['at'])
    op.create_table(
        'text_opt_out',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phone_hash', sa.String(length=64), nullable=False),
        sa.Column('phone', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('phone_hash'),
    )
    op.create_table(
        'text_message',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('provider_id', sa.String(length=64), nullable=True),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('error_code', sa.String(length=10), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('fallback_queued', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['outbox_id'], ['outbox_email.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['request_id'], ['consultation_request.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('outbox_id'),
        sa.UniqueConstraint('provider_id'),
    )
    op.create_index('ix_text_message_request_id', 'text_message', ['request_id'])
    op.create_index('ix_text_message_created_at', 'text_message', ['created_at'])


def downgrade():
    op.drop_table('text_message')
    op.drop_table('text_opt_out')
    op.drop_table('text_consent_event')
    op.drop_table('text_consent')
