"""Step 2, version 2: the name a client wants to be called, whether the practice may
text them or leave a voicemail, that they are 18 or older, and how they expect to pay
(self-pay means a Good Faith Estimate is due). NULL on older requests.

Revision ID: 5c1e7a9d2b40
Revises: e7a3c1f2b9d4
Create Date: 2026-12-02 16:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c1e7a9d2b40'
down_revision = 'e7a3c1f2b9d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preferred_name', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('ok_to_text', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('ok_to_voicemail', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('adult', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('payment', sa.String(length=12), nullable=True))


def downgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_column('payment')
        batch_op.drop_column('adult')
        batch_op.drop_column('ok_to_voicemail')
        batch_op.drop_column('ok_to_text')
        batch_op.drop_column('preferred_name')
