"""an index for the back office's search of registrations: trigram GIN on PostgreSQL

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 12:45:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        # LIKE '%term%' on search_text uses a trigram index; a B-tree cannot serve a leading wildcard.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_index('ix_registration_search_text', ['search_text'], unique=False,
                              postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})


def downgrade():
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_index('ix_registration_search_text')
    # pg_trgm stays: other objects may use it, and it costs nothing unused.
