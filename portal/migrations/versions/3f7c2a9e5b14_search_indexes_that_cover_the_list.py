"""Back-office search indexes that cover the request list: each name index holds the
other name and the received time, the email index the received time.

A search for "maria lopez" (first name starts with "maria", last name with "lopez")
then checks both names inside one index instead of reading every Lopez's row, and a
broad search ("garc", thousands of rows) sorts by received time without reading the
table (SQLite; on PostgreSQL the same indexes serve index-only scans).

Revision ID: 3f7c2a9e5b14
Revises: 5c1e7a9d2b40
Create Date: 2026-12-02 17:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3f7c2a9e5b14'
down_revision = '5c1e7a9d2b40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_index('ix_request_first_name')
        batch_op.drop_index('ix_request_last_name')
        batch_op.drop_index('ix_request_email')
        batch_op.create_index('ix_request_first_last_name', ['first_name_normalised',
                              'last_name_normalised', 'created_at'], unique=False)
        batch_op.create_index('ix_request_last_first_name', ['last_name_normalised',
                              'first_name_normalised', 'created_at'], unique=False)
        batch_op.create_index('ix_request_email_created', ['email_normalised', 'created_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('consultation_request', schema=None) as batch_op:
        batch_op.drop_index('ix_request_email_created')
        batch_op.drop_index('ix_request_last_first_name')
        batch_op.drop_index('ix_request_first_last_name')
        batch_op.create_index('ix_request_email', ['email_normalised'], unique=False)
        batch_op.create_index('ix_request_last_name', ['last_name_normalised'], unique=False)
        batch_op.create_index('ix_request_first_name', ['first_name_normalised'], unique=False)
