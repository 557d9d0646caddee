"""language access: enabled and default languages, translations of organizer-written content,
the registration's language and interpretation needs, sessions' interpretation

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

TRANSLATED_TABLES = ('convening', 'ticket_type', 'question', 'host_organization', 'program_session',
                     'site_visit')


def upgrade():
    with op.batch_alter_table('convening', schema=None) as batch_op:
        batch_op.add_column(sa.Column('languages', sa.JSON(), server_default='["en"]', nullable=False))
        batch_op.add_column(sa.Column('default_language', sa.String(length=5), server_default='en',
                                      nullable=False))
        batch_op.add_column(sa.Column('interpretation_languages', sa.JSON(), server_default='[]',
                                      nullable=False))
    for table in TRANSLATED_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('translations', sa.JSON(), server_default='{}', nullable=False))
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=5), server_default='en', nullable=False))
        batch_op.add_column(sa.Column('interpretation_needs', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('program_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interpretation', sa.JSON(), server_default='[]', nullable=False))


def downgrade():
    with op.batch_alter_table('program_session', schema=None) as batch_op:
        batch_op.drop_column('interpretation')
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_column('interpretation_needs')
        batch_op.drop_column('language')
    for table in reversed(TRANSLATED_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('translations')
    with op.batch_alter_table('convening', schema=None) as batch_op:
        batch_op.drop_column('interpretation_languages')
        batch_op.drop_column('default_language')
        batch_op.drop_column('languages')
