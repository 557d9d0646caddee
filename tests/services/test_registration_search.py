"""The back office's search of registrations: the SQLite trigram index finds exactly what LIKE finds."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from convene import create_app
from convene.extensions import db
from convene.models import Base, Registration
from convene.models.registrations import SEARCH_INDEX_TABLE
from convene.services.registration_lists import _escape_like, search_conditions, search_terms
from tests.factories import make_convening, make_registration, make_ticket

# Letters of several scripts, accents both precomposed and combining, Arabic with and without vowel marks,
# LIKE's wildcards and FTS5's query syntax, which must all be plain text to search for.
PIECES = ["a", "b", "e", "é", "É", "e\u0301", "ñ", "ø", "ß", "ı", "İ", "ǅ", "σ", "ς", "Σ", "ᏸ", "Ᏸ",
          "م", "ح", "د", "مُ", "حَ", "ـ", "ا", "ل", "ه", "'", "’", '"', "*", "-", ":", "^", "(", ")", "+", "%", "_",
          "\\", ".", "@", " ", "NEAR", "near", "AND", "OR", "NOT", "ab", "abc", "محمد", "Álvarez"]
TEXT = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
PERSON = st.fixed_dictionaries({"given_name": TEXT, "family_name": TEXT, "organization": TEXT, "badge_name": TEXT})


def like_ids(convening_id: int, terms: list[str]) -> set[int]:
    """The plain reading: every term found by LIKE '%term%' in search_text, no index."""
    return set(db.session.scalars(sa.select(Registration.id).where(
        Registration.convening_id == convening_id,
        *(Registration.search_text.like(f"%{_escape_like(term)}%", escape="\\") for term in terms))))


def searched_ids(convening_id: int, q: str) -> set[int]:
    return set(db.session.scalars(sa.select(Registration.id).where(
        Registration.convening_id == convening_id, *search_conditions(search_terms(q)))))


def check_index(app) -> None:
    """On SQLite, FTS5's own check that the trigram index holds exactly the registration table's text."""
    if db.engine.dialect.name == "sqlite":
        db.session.execute(sa.text(f"INSERT INTO {SEARCH_INDEX_TABLE} ({SEARCH_INDEX_TABLE}, rank) "
                                   "VALUES ('integrity-check', 1)"))
        db.session.rollback()


def test_the_search_finds_exactly_what_like_finds_for_any_text(app):
    convening = make_convening(slug="search")
    ticket = make_ticket(convening)
    n = iter(range(1, 10**6))

    # No shrinking: each example writes rows, and a failure prints its example as drawn anyway.
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(people=st.lists(PERSON, max_size=8), queries=st.lists(TEXT, min_size=1, max_size=5), data=st.data())
    def check(people, queries, data):
        db.session.execute(sa.delete(Registration).where(Registration.convening_id == convening.id))
        db.session.commit()
        made = [make_registration(convening, ticket, next(n), **spec) for spec in people]
        texts = [r.search_text for r in made]
        # Pieces of what was stored are searched for too, so most queries find someone.
        for text in texts:
            if text:
                start = data.draw(st.integers(0, len(text) - 1))
                queries.append(text[start:start + data.draw(st.integers(1, 8))])
        for q in queries:
            terms = search_terms(q)
            expected = {r.id for r in made if all(term in r.search_text for term in terms)}
            assert like_ids(convening.id, terms) == expected, q
            assert searched_ids(convening.id, q) == expected, q
        check_index(app)

    check()


@pytest.mark.parametrize("typed", ['"', '""', "NEAR", "near(ab cd)", "a AND b", "-x", "ab:cd", "col:abc", "abc*",
                                   "^abc", "(abc)", "a+b", "%", "_", "\\", "'; --", "OR", "NOT abc", '"abc"'])
def test_query_syntax_is_text_to_find(organizer_client, typed):
    convening = make_convening()
    ticket = make_ticket(convening)
    holder = make_registration(convening, ticket, 1, organization=f"Org {typed} end")
    make_registration(convening, ticket, 2, organization="Other")
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations", query_string={"q": typed})
    assert page.status_code == 200
    assert searched_ids(convening.id, typed) == like_ids(convening.id, search_terms(typed)) >= {holder.id}


def test_the_index_follows_inserts_edits_and_deletes(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    people = [make_registration(convening, ticket, n, family_name=name)
              for n, name in enumerate(["Álvarez", "Okafor", "عبد الله"], start=1)]
    assert searched_ids(convening.id, "alvarez") == {people[0].id}
    people[0].family_name = "Öztürk"
    db.session.commit()
    assert searched_ids(convening.id, "alvarez") == set()
    assert searched_ids(convening.id, "ozturk") == {people[0].id}
    db.session.execute(sa.update(Registration).where(Registration.id == people[1].id)
                       .values(search_text="renamed in bulk"))
    db.session.delete(people[2])
    db.session.commit()
    assert searched_ids(convening.id, "okafor") == set()
    assert searched_ids(convening.id, "in bulk") == {people[1].id}
    assert searched_ids(convening.id, "عبد") == set()
    check_index(app)


def test_short_words_are_found_without_the_index(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    bo = make_registration(convening, ticket, 1, given_name="Bo", family_name="Li")
    make_registration(convening, ticket, 2, given_name="Ana", family_name="Smith")
    assert searched_ids(convening.id, "li bo") == {bo.id}
    assert searched_ids(convening.id, "bo smi") == set()


def test_create_all_makes_and_drop_all_removes_the_sqlite_index(tmp_path):
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/made.db"})

    def objects():
        return set(db.session.execute(sa.text(
            "SELECT type, name FROM sqlite_master WHERE name LIKE 'registration_search%'")).all())

    with app.app_context():
        Base.metadata.create_all(db.engine)
        assert {("table", SEARCH_INDEX_TABLE), ("trigger", "registration_search_insert"),
                ("trigger", "registration_search_update"), ("trigger", "registration_search_delete")} <= objects()
        db.session.rollback()
        Base.metadata.drop_all(db.engine)
        assert objects() == set()
        db.session.remove()
        db.engine.dispose()
