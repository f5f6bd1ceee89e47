"""The language each request was made in, so later emails speak it; therapists' bios
in Spanish for the Spanish pages.

Revision ID: e5a1c0de4e15
Revises: 3f7c2a9e5b14
Create Date: 2026-12-02 17:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5a1c0de4e15'
down_revision = '3f7c2a9e5b14'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), server_default='en',
                                      nullable=False))
    with op.batch_alter_table('therapist', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bio_es', sa.Text(), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('therapist', schema=None) as batch_op:
        batch_op.drop_column('bio_es')
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_column('language')
