"""The network an unconfirmed request came from (a keyed hash of its IPv6 /64 or IPv4
address), so one network can hold only a few times at once (portal.booking.holds).

Revision ID: b3d5f7a9c1e2
Revises: a7b2c4d6e8f0
Create Date: 2026-12-06 06:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3d5f7a9c1e2'
down_revision = 'a7b2c4d6e8f0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_verification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('network_key', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_email_verification_network_key'),
                              ['network_key'], unique=False)


def downgrade():
    with op.batch_alter_table('email_verification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_verification_network_key'))
        batch_op.drop_column('network_key')
