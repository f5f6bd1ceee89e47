"""Therapists' own calendars (portal.calendars): the calendar each therapist connects,
the busy ranges read from it, their private feed of consultations, and the outbox's
channel (an email, or an event written into a therapist's CalDAV calendar). Busy
ranges and calendars raise the availability version (CALENDAR_TRIGGERS).

Revision ID: b8d2e6f4a1c3
Revises: f3b9d1e7c5a2
Create Date: 2026-12-06 06:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from portal.booking import availability_version


# revision identifiers, used by Alembic.
revision = 'b8d2e6f4a1c3'
down_revision = 'f3b9d1e7c5a2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'therapist_calendar',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('therapist_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('username', sa.String(length=254), nullable=True),
        sa.Column('password', sa.Text(), nullable=True),
        sa.Column('validator', sa.String(length=300), nullable=True),
        sa.Column('connected_at', sa.DateTime(), nullable=False),
        sa.Column('read_ok_at', sa.DateTime(), nullable=True),
        sa.Column('fresh_since', sa.DateTime(), nullable=True),
        sa.Column('failing_since', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=40), nullable=True),
        sa.Column('event_count', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['therapist_id'], ['therapist.id'],
                                name=op.f('fk_therapist_calendar_therapist_id_therapist'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_therapist_calendar')),
        sa.UniqueConstraint('therapist_id', name=op.f('uq_therapist_calendar_therapist_id')),
    )
    op.create_table(
        'calendar_busy',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('therapist_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('ends_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['therapist_id'], ['therapist.id'],
                                name=op.f('fk_calendar_busy_therapist_id_therapist'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_busy')),
    )
    op.create_index('ix_calendar_busy_therapist', 'calendar_busy',
                    ['therapist_id', 'starts_at'], unique=False)
    op.create_table(
        'calendar_feed',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('therapist_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('token', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['therapist_id'], ['therapist.id'],
                                name=op.f('fk_calendar_feed_therapist_id_therapist'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feed')),
        sa.UniqueConstraint('therapist_id', name=op.f('uq_calendar_feed_therapist_id')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_calendar_feed_token_hash')),
    )
    # A plain ADD COLUMN (with its default) on both databases: no table rebuild, so
    # outbox_email keeps everything it has.
    op.add_column('outbox_email', sa.Column('channel', sa.String(length=10), nullable=False,
                                            server_default='email'))
    availability_version.install(op.get_bind(), availability_version.CALENDAR_TRIGGERS)


def downgrade():
    availability_version.uninstall(op.get_bind(), availability_version.CALENDAR_TRIGGERS,
                                   function=False)
    with op.batch_alter_table('outbox_email') as batch_op:
        batch_op.drop_column('channel')
    op.drop_table('calendar_feed')
    op.drop_index('ix_calendar_busy_therapist', table_name='calendar_busy')
    op.drop_table('calendar_busy')
    op.drop_table('therapist_calendar')
