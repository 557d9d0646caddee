"""the back office's lists at 50,000: FTS5 trigram search on SQLite, kept by triggers; indexes for counts
by status and ticket and for the delegation and role filters

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-02 15:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0019'
branch_labels = None
depends_on = None

# The objects convene/models/registrations.py makes for create_all (SQLITE_SEARCH_INDEX), as they were here.
STATEMENTS = (
    "CREATE VIRTUAL TABLE registration_search USING fts5("
    "search_text, content='registration', content_rowid='id', tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER registration_search_insert AFTER INSERT ON registration BEGIN "
    "INSERT INTO registration_search (rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER registration_search_delete AFTER DELETE ON registration BEGIN "
    "INSERT INTO registration_search (registration_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER registration_search_update AFTER UPDATE OF id, search_text ON registration BEGIN "
    "INSERT INTO registration_search (registration_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO registration_search (rowid, search_text) VALUES (new.id, new.search_text); END",
)


def upgrade():
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_index('ix_registration_convening_status_ticket', ['convening_id', 'status', 'ticket_type_id'],
                              unique=False)
        batch_op.create_index('ix_registration_convening_delegation', ['convening_id', 'delegation_id', 'sort_key'],
                              unique=False)
        batch_op.create_index('ix_registration_convening_delegation_status', ['convening_id', 'delegation_id', 'status'],
                              unique=False)
        batch_op.create_index('ix_registration_convening_role', ['convening_id', 'role', 'sort_key'], unique=False)
        batch_op.create_index('ix_registration_convening_role_status', ['convening_id', 'role', 'status'], unique=False)
        batch_op.drop_index('ix_registration_convening_status')
    # PostgreSQL searches through its trigram GIN index (0018) and needs nothing more.
    if op.get_bind().dialect.name != 'sqlite':
        return
    for statement in STATEMENTS:
        op.execute(statement)
    # Index the rows already there, read from the registration table.
    op.execute("INSERT INTO registration_search (registration_search) VALUES ('rebuild')")


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        for trigger in ('insert', 'delete', 'update'):
            op.execute(f'DROP TRIGGER IF EXISTS registration_search_{trigger}')
        op.execute('DROP TABLE IF EXISTS registration_search')
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_index('ix_registration_convening_status', ['convening_id', 'status'], unique=False)
        batch_op.drop_index('ix_registration_convening_role_status')
        batch_op.drop_index('ix_registration_convening_role')
        batch_op.drop_index('ix_registration_convening_delegation_status')
        batch_op.drop_index('ix_registration_convening_delegation')
        batch_op.drop_index('ix_registration_convening_status_ticket')
