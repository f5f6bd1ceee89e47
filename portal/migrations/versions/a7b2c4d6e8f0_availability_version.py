"""A number the database raises on every change that may change the free times, so the
time picker can reuse the free times it worked out (portal.booking.availability_version).

Revision ID: a7b2c4d6e8f0
Revises: e5a1c0de4e15
Create Date: 2026-12-02 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from portal.booking import availability_version


# revision identifiers, used by Alembic.
revision = 'a7b2c4d6e8f0'
down_revision = 'e5a1c0de4e15'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'availability_version',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_availability_version')),
    )
    availability_version.install(op.get_bind())


def downgrade():
    availability_version.uninstall(op.get_bind())
    op.drop_table('availability_version')
