"""The request journey (DESIGN v3): how the client meets (phone or video), each
therapist's video room, and "how to contact you" answered after the code (so empty
until then).

Revision ID: c4e6a8b0d2f4
Revises: b8d2e6f4a1c3
Create Date: 2026-12-06 06:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from portal.booking import availability_version


# revision identifiers, used by Alembic.
revision = 'c4e6a8b0d2f4'
down_revision = 'b8d2e6f4a1c3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('therapist', schema=None) as batch_op:
        batch_op.add_column(sa.Column('video_url', sa.String(length=500), nullable=True))
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting', sa.String(length=5), nullable=True))
        batch_op.alter_column('preferred_contact', existing_type=sa.String(length=10),
                              nullable=True)
    # SQLite rebuilt consultation_request (and with it dropped its triggers).
    availability_version.install(op.get_bind())


def downgrade():
    op.execute("UPDATE consultation_request SET preferred_contact = 'email'"
               " WHERE preferred_contact IS NULL")
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.alter_column('preferred_contact', existing_type=sa.String(length=10),
                              nullable=False)
        batch_op.drop_column('meeting')
    with op.batch_alter_table('therapist', schema=None) as batch_op:
        batch_op.drop_column('video_url')
    availability_version.install(op.get_bind())
