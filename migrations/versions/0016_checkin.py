"""check-in: lists per convening (an entrance list for each), check-ins and the scan log

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('checkin_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('convening_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('site_visit_id', sa.Integer(), nullable=True),
    sa.Column('everyone', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('ticket_type_ids', sa.JSON(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind = 'session') = (session_id IS NOT NULL)", name=op.f('ck_checkin_list_session_for_session_kind')),
    sa.CheckConstraint("(kind = 'visit') = (site_visit_id IS NOT NULL)", name=op.f('ck_checkin_list_visit_for_visit_kind')),
    sa.CheckConstraint("kind IN ('main', 'session', 'visit', 'gathering')", name=op.f('ck_checkin_list_kind_known')),
    sa.ForeignKeyConstraint(['convening_id'], ['convening.id'], name=op.f('fk_checkin_list_convening_id_convening'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['program_session.id'], name=op.f('fk_checkin_list_session_id_program_session'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_visit_id'], ['site_visit.id'], name=op.f('fk_checkin_list_site_visit_id_site_visit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_list')),
    sa.UniqueConstraint('convening_id', 'name', name=op.f('uq_checkin_list_convening_id_name'))
    )
    with op.batch_alter_table('checkin_list', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkin_list_convening_id'), ['convening_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_list_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_list_site_visit_id'), ['site_visit_id'], unique=False)
        batch_op.create_index('uq_checkin_list_main', ['convening_id'], unique=True,
                              sqlite_where=sa.text("kind = 'main'"), postgresql_where=sa.text("kind = 'main'"))

    op.create_table('checkin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_in_by_id', sa.Integer(), nullable=True),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('reverted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reverted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['checked_in_by_id'], ['user_account.id'], name=op.f('fk_checkin_checked_in_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['list_id'], ['checkin_list.id'], name=op.f('fk_checkin_list_id_checkin_list'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registration.id'], name=op.f('fk_checkin_registration_id_registration'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reverted_by_id'], ['user_account.id'], name=op.f('fk_checkin_reverted_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin'))
    )
    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkin_registration_id'), ['registration_id'], unique=False)
        batch_op.create_index('ix_checkin_list_at', ['list_id', 'checked_in_at'], unique=False)
        # Two desks scanning the same badge make one check-in: one active row per list and person.
        batch_op.create_index('uq_checkin_active', ['list_id', 'registration_id'], unique=True,
                              sqlite_where=sa.text('reverted_at IS NULL'),
                              postgresql_where=sa.text('reverted_at IS NULL'))

    op.create_table('checkin_scan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('convening_id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('scan_id', sa.String(length=64), nullable=True),
    sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code', sa.String(length=200), nullable=False),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=True),
    sa.Column('checkin_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['checkin_id'], ['checkin.id'], name=op.f('fk_checkin_scan_checkin_id_checkin'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['convening_id'], ['convening.id'], name=op.f('fk_checkin_scan_convening_id_convening'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['list_id'], ['checkin_list.id'], name=op.f('fk_checkin_scan_list_id_checkin_list'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registration.id'], name=op.f('fk_checkin_scan_registration_id_registration'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_checkin_scan_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_scan')),
    sa.UniqueConstraint('device', 'scan_id', name=op.f('uq_checkin_scan_device_scan_id'))
    )
    with op.batch_alter_table('checkin_scan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkin_scan_convening_id'), ['convening_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_scan_list_id'), ['list_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkin_scan_registration_id'), ['registration_id'], unique=False)
        batch_op.create_index('ix_checkin_scan_list_at', ['list_id', 'at'], unique=False)

    # Every convening has its entrance list from the start; those made before check-in get theirs now.
    convening = sa.table('convening', sa.column('id', sa.Integer))
    checkin_list = sa.table('checkin_list', sa.column('convening_id', sa.Integer), sa.column('kind'),
                            sa.column('name'), sa.column('ticket_type_ids', sa.JSON), sa.column('roles', sa.JSON),
                            sa.column('created_at', sa.DateTime(timezone=True)))
    connection = op.get_bind()
    postgresql = connection.dialect.name == 'postgresql'
    now = sa.func.now() if postgresql else sa.text("CURRENT_TIMESTAMP")
    # CAST(... AS JSON) would give a number on SQLite (JSON has numeric affinity there).
    empty = sa.cast(sa.literal('[]'), sa.JSON) if postgresql else sa.literal('[]')
    connection.execute(checkin_list.insert().from_select(
        ['convening_id', 'kind', 'name', 'ticket_type_ids', 'roles', 'created_at'],
        sa.select(convening.c.id, sa.literal('main'), sa.literal('Entrance'), empty, empty, now)))


def downgrade():
    with op.batch_alter_table('checkin_scan', schema=None) as batch_op:
        batch_op.drop_index('ix_checkin_scan_list_at')
        batch_op.drop_index(batch_op.f('ix_checkin_scan_registration_id'))
        batch_op.drop_index(batch_op.f('ix_checkin_scan_list_id'))
        batch_op.drop_index(batch_op.f('ix_checkin_scan_convening_id'))
    op.drop_table('checkin_scan')
    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.drop_index('uq_checkin_active')
        batch_op.drop_index('ix_checkin_list_at')
        batch_op.drop_index(batch_op.f('ix_checkin_registration_id'))
    op.drop_table('checkin')
    with op.batch_alter_table('checkin_list', schema=None) as batch_op:
        batch_op.drop_index('uq_checkin_list_main')
        batch_op.drop_index(batch_op.f('ix_checkin_list_site_visit_id'))
        batch_op.drop_index(batch_op.f('ix_checkin_list_session_id'))
        batch_op.drop_index(batch_op.f('ix_checkin_list_convening_id'))
    op.drop_table('checkin_list')
