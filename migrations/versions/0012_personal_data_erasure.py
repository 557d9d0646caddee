"""personal_data_erasure: each erasure of a convening's personal data and the anonymous counts it kept

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('personal_data_erasure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('convening_id', sa.Integer(), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('erased_by', sa.String(length=254), nullable=False),
    sa.Column('erased', sa.JSON(), nullable=False),
    sa.Column('kept_counts', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['convening_id'], ['convening.id'], name=op.f('fk_personal_data_erasure_convening_id_convening'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_data_erasure'))
    )
    with op.batch_alter_table('personal_data_erasure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_personal_data_erasure_convening_id'), ['convening_id'], unique=False)


def downgrade():
    with op.batch_alter_table('personal_data_erasure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_personal_data_erasure_convening_id'))

    op.drop_table('personal_data_erasure')
