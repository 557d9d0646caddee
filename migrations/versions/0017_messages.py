"""messages: organizers' messages to registrants, one recipient row per message and person, bounce flags

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 11:56:06.991408

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('convening_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('subjects', sa.JSON(), nullable=False),
    sa.Column('bodies', sa.JSON(), nullable=False),
    sa.Column('filter', sa.JSON(), nullable=False),
    sa.Column('copy_delegation_leads', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=False),
    sa.Column('sent_count', sa.Integer(), nullable=False),
    sa.Column('failed_count', sa.Integer(), nullable=False),
    sa.Column('bounced_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_message_author_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['convening_id'], ['convening.id'], name=op.f('fk_message_convening_id_convening'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_message_job_id_job'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message'))
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_convening_id'), ['convening_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_scheduled_for'), ['scheduled_for'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_status'), ['status'], unique=False)

    op.create_table('message_recipient',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=True),
    sa.Column('delegation_id', sa.Integer(), nullable=True),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=12), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['delegation_id'], ['delegation.id'], name=op.f('fk_message_recipient_delegation_id_delegation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_message_recipient_message_id_message'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox_message.id'], name=op.f('fk_message_recipient_outbox_id_outbox_message'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['registration_id'], ['registration.id'], name=op.f('fk_message_recipient_registration_id_registration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_recipient')),
    sa.UniqueConstraint('message_id', 'delegation_id', name=op.f('uq_message_recipient_message_id_delegation_id')),
    sa.UniqueConstraint('message_id', 'registration_id', name=op.f('uq_message_recipient_message_id_registration_id'))
    )
    with op.batch_alter_table('message_recipient', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_recipient_outbox_id'), ['outbox_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_recipient_registration_id'), ['registration_id'], unique=False)

    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_bounced_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('email_bounce_reason', sa.String(length=300), server_default='', nullable=False))



def downgrade():
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_column('email_bounce_reason')
        batch_op.drop_column('email_bounced_at')

    with op.batch_alter_table('message_recipient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_recipient_registration_id'))
        batch_op.drop_index(batch_op.f('ix_message_recipient_outbox_id'))

    op.drop_table('message_recipient')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_status'))
        batch_op.drop_index(batch_op.f('ix_message_scheduled_for'))
        batch_op.drop_index(batch_op.f('ix_message_convening_id'))

    op.drop_table('message')
