"""search_text and sort_key on registrations: accent- and case-folded search and A-Z order

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:49:25.475135

"""
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# A frozen copy of convene.text.search_key as of this revision: the backfill must give the same keys
# the app wrote then, even after the app's function changes (a later change gets its own backfill).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES_RE = re.compile(r"\s+")
_FOLD_LETTERS = str.maketrans({
    "đ": "d", "ð": "d", "ø": "o", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i", "ȷ": "j",
    "ħ": "h", "ŧ": "t", "ƒ": "f", "ɨ": "i", "ʉ": "u", "ŋ": "n", "ɖ": "d", "ɗ": "d", "ƴ": "y", "ƙ": "k",
    "ɓ": "b", "ɛ": "e", "ɔ": "o", "ĸ": "k",
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u0640": "",
})


def _search_key(text):
    if not text:
        return ""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", str(text)).casefold())
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Me"))
    return _SPACES_RE.sub(" ", _CONTROL_RE.sub(" ", text.translate(_FOLD_LETTERS))).strip()


def _backfill():
    registration = sa.table(
        'registration', sa.column('id', sa.Integer), sa.column('given_name'), sa.column('family_name'),
        sa.column('badge_name'), sa.column('email'), sa.column('organization'), sa.column('reference'),
        sa.column('search_text'), sa.column('sort_key'))
    connection = op.get_bind()
    update = (sa.update(registration).where(registration.c.id == sa.bindparam('row_id'))
              .values(search_text=sa.bindparam('new_search_text'), sort_key=sa.bindparam('new_sort_key')))
    last_id = 0
    while True:  # in batches, so a large table never sits in memory at once
        rows = connection.execute(
            sa.select(registration.c.id, registration.c.given_name, registration.c.family_name,
                      registration.c.badge_name, registration.c.email, registration.c.organization,
                      registration.c.reference)
            .where(registration.c.id > last_id).order_by(registration.c.id).limit(1000)
        ).all()
        if not rows:
            return
        connection.execute(update, [{
            'row_id': row.id,
            'new_search_text': " ".join(k for k in map(_search_key, (
                row.given_name, row.family_name, row.badge_name, row.email, row.organization, row.reference)) if k),
            'new_sort_key': f"{_search_key(row.family_name)}\x1f{_search_key(row.given_name)}",
        } for row in rows])
        last_id = rows[-1].id


def upgrade():
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
        # Byte order on PostgreSQL whatever the database's collation (see convene.models.registrations).
        batch_op.add_column(sa.Column('sort_key', sa.Text().with_variant(sa.Text(collation='C'), 'postgresql'), server_default='', nullable=False))
    _backfill()
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_index('ix_registration_convening_sort_key', ['convening_id', 'sort_key'], unique=False)


def downgrade():
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_index('ix_registration_convening_sort_key')
        batch_op.drop_column('sort_key')
        batch_op.drop_column('search_text')
