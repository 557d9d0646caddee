"""the program's revision on each convening, for the public pages' cache

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 15:15:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('convening', schema=None) as batch_op:
        batch_op.add_column(sa.Column('program_revision', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('convening', schema=None) as batch_op:
        batch_op.drop_column('program_revision')
