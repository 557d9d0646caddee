"""privacy notice and retention per convening; a switch letting group leads type new delegations

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('convening', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_new_delegations', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('privacy_notice', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('retention_months', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('personal_data_erased_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('convening', schema=None) as batch_op:
        batch_op.drop_column('personal_data_erased_at')
        batch_op.drop_column('retention_months')
        batch_op.drop_column('privacy_notice')
        batch_op.drop_column('allow_new_delegations')
