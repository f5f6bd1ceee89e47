"""The waitlist: "email me if an earlier time opens" on a request, and the freed
times offered to waitlisted clients (one a day each).

Revision ID: e7a3c1f2b9d4
Revises: e7c1b9a4d2f0
Create Date: 2026-12-02 16:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7a3c1f2b9d4'
down_revision = 'e7c1b9a4d2f0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waitlist', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))

    op.create_table('waitlist_offer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=True),
    sa.Column('slot_start', sa.DateTime(), nullable=False),
    sa.Column('offered_on', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=10), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['consultation_request.id'], name=op.f('fk_waitlist_offer_request_id_consultation_request'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapist.id'], name=op.f('fk_waitlist_offer_therapist_id_therapist'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_offer'))
    )
    with op.batch_alter_table('waitlist_offer', schema=None) as batch_op:
        batch_op.create_index('uq_waitlist_offer_day', ['request_id', 'offered_on'], unique=True)


def downgrade():
    with op.batch_alter_table('waitlist_offer', schema=None) as batch_op:
        batch_op.drop_index('uq_waitlist_offer_day')

    op.drop_table('waitlist_offer')
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_column('waitlist')
