"""an index for the back office's search of registrations on SQLite: FTS5 trigrams kept by triggers

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-02 15:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0018'
branch_labels = None
depends_on = None

# The objects convene/models/registrations.py makes for create_all (SQLITE_SEARCH_INDEX), as they were here.
STATEMENTS = (
    "CREATE VIRTUAL TABLE registration_search USING fts5("
    "search_text, content='registration', content_rowid='id', tokenize='trigram case_sensitive 0')",
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
    # PostgreSQL searches through its trigram GIN index (0018) and needs nothing here.
    if op.get_bind().dialect.name != 'sqlite':
        return
    for statement in STATEMENTS:
        op.execute(statement)
    # Index the rows already there, read from the registration table.
    op.execute("INSERT INTO registration_search (registration_search) VALUES ('rebuild')")


def downgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    for trigger in ('insert', 'delete', 'update'):
        op.execute(f'DROP TRIGGER IF EXISTS registration_search_{trigger}')
    op.execute('DROP TABLE IF EXISTS registration_search')
