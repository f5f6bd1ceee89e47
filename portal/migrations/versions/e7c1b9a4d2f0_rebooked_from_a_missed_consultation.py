"""A request booked again after a missed consultation names the one it came from.

Revision ID: e7c1b9a4d2f0
Revises: d01a45f8a947
Create Date: 2026-12-02 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7c1b9a4d2f0'
down_revision = 'd01a45f8a947'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rebooked_from_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_consultation_request_rebooked_from_id'), ['rebooked_from_id'])
        batch_op.create_foreign_key(
            batch_op.f('fk_consultation_request_rebooked_from_id_consultation_request'),
            'consultation_request', ['rebooked_from_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_consultation_request_rebooked_from_id_consultation_request'),
            type_='foreignkey')
        batch_op.drop_constraint(
            batch_op.f('uq_consultation_request_rebooked_from_id'), type_='unique')
        batch_op.drop_column('rebooked_from_id')
