"""The desk's walk-ins under pressure: two desks registering the same person, or the last seat, at once."""
from __future__ import annotations

import sqlalchemy as sa

from convene.extensions import db
from convene.models import Registration
from convene.models.checkin import Checkin
from convene.services import checkin, desk
from tests.factories import make_convening, make_ticket
from tests.racing import race


def person(n: int) -> dict:
    return {"given_name": f"Nadia{n}", "family_name": "Haddad", "email": f"nadia{n}@example.org",
            "organization": "Welcome Dayton"}


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_two_desks_registering_the_same_walk_in_at_once_make_one_registration_and_one_check_in(app):
    convening = make_convening()
    ticket = make_ticket(convening, name="Community")
    entrance_id = checkin.main_list(convening.id).id

    def walk_in():
        return desk.register_walk_in(convening.id, entrance_id, ticket.id, person(1), payment=None, by=None).answer \
            .result.value

    outcomes = race(app, [walk_in for _ in range(6)])
    assert sorted(outcomes) == ["checked_in"] + ["walk_in_already_registered"] * 5, outcomes
    assert (count(Registration), count(Checkin)) == (1, 1)


def test_the_last_seat_goes_to_exactly_one_of_several_walk_ins(app):
    convening = make_convening()
    ticket = make_ticket(convening, name="Community", capacity=1)
    entrance_id = checkin.main_list(convening.id).id
    outcomes = race(app, [
        (lambda n=n: desk.register_walk_in(convening.id, entrance_id, ticket.id, person(n), payment=None,
                                           by=None).answer.result.value)
        for n in range(5)])
    assert sorted(outcomes) == ["checked_in"] + ["comp_over_capacity"] * 4, outcomes
    assert (count(Registration), count(Checkin)) == (1, 1)
