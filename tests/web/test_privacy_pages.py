"""The privacy notice on every public form, the organizers' privacy page, and erasing personal data from it."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Convening, HostOrganization, Registration, Status, utcnow
from convene.services import privacy, reports
from convene.services import registrations as registrations_service
from convene.services.payments import order_token
from convene.services.tokens import manage_token, offer_token
from tests.factories import make_convening, make_question, make_registration, make_ticket, person
from tests.privacy_scene import ERASED_VALUES, build_scene, scan
from tests.schedule_helpers import make_block, make_session, publish


def fresh(convening_id: int) -> Convening:
    db.session.rollback()
    return db.session.get(Convening, convening_id)


def form_html(page: str, marker: str) -> str:
    """The whole <form> whose opening tag contains `marker` (an id or part of its action)."""
    match = re.search(r"<form[^>]*" + re.escape(marker) + r"[^>]*>.*?</form>", page, re.DOTALL)
    assert match, f"no form with {marker}"
    return match.group(0)


# -- the public notice -------------------------------------------------------------------------------

def test_the_privacy_page_shows_the_default_notice_while_the_organizers_wrote_none(client, app):
    convening = make_convening(slug="dayton", name="Dayton Summit", contact_email="privacy@dayton.example",
                               retention_months=6)
    page = client.get("/c/dayton/privacy")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Privacy notice</h1>" in text and "Dayton Summit is run by its organizers" in text
    assert "privacy@dayton.example" in text and "dietary and access needs" in text
    assert "until 6 months after the convening ends" in text
    assert text.count("<p>Who runs it:") == 1 and "<p>Your rights:" in text  # one paragraph each
    convening.published = False
    db.session.commit()
    assert client.get("/c/dayton/privacy").status_code == 404


def test_the_organizers_text_replaces_the_default_paragraph_by_paragraph_and_escaped(client, app):
    convening = make_convening(slug="own-words")
    privacy.update_privacy_settings(convening.id, "We are the Dayton team.\r\n\r\n<b>Bold</b> & plain.", None)
    text = client.get("/c/own-words/privacy").text
    assert "<p>We are the Dayton team.</p>" in text and "<p>&lt;b&gt;Bold&lt;/b&gt; &amp; plain.</p>" in text
    assert "Who runs it:" not in text


@pytest.fixture
def full_convening(app):
    """An open convening asking every kind of thing: questions, site-visit ranking, session ranking and sign-up."""
    convening = make_convening(slug="forms", visit_preferences_open=True)
    ticket = make_ticket(convening)
    make_question(convening, "Anything to tell us?")
    db.session.add(HostOrganization(convening_id=convening.id, name="Magnet"))
    block = make_block(convening, "Working groups")
    make_session(convening, "Group A", 1, "09:00", "10:00", block_id=block.id, signup_required=True, capacity=5)
    make_session(convening, "Group B", 1, "09:00", "10:00", block_id=block.id, signup_required=True, capacity=5)
    make_session(convening, "Workshop", 2, "09:00", "10:00", signup_required=True, capacity=5)
    publish(convening)
    registration = make_registration(convening, ticket, 1)
    waiting = make_registration(convening, ticket, 2, status=Status.OFFERED)
    waiting.offer_expires_at = utcnow() + timedelta(days=1)
    db.session.commit()
    return convening, registration, waiting


def test_every_public_form_links_to_the_privacy_notice(client, full_convening):
    convening, registration, waiting = full_convening
    link = 'href="/c/forms/privacy"'
    register = client.get("/c/forms/register").text
    assert link in form_html(register, 'id="register-form"')
    assert link in form_html(client.get("/c/forms/register/group").text, 'id="group-form"')
    assert link in form_html(client.get("/c/forms/manage-link").text, 'method="post"')
    manage = client.get(f"/c/forms/manage/{manage_token(registration)}").text
    assert link in form_html(manage, 'id="details-form"')
    assert link in form_html(manage, "/visits")  # the site-visit ranking
    assert link in form_html(manage, 'id="rank-block-')  # the session ranking
    signups = manage[manage.index("Sessions with sign-up"):]
    assert link in signups[:signups.index('id="signup-')]
    assert link in form_html(client.get(f"/c/forms/offer/{offer_token(waiting)}").text, 'method="post"')
    # And the footer of every page of the convening, its own page first.
    for path in ["/c/forms/", "/c/forms/program", f"/c/forms/manage/{manage_token(registration)}/cancel"]:
        footer = client.get(path).text.split('<footer class="site-footer">', 1)[1]
        assert link in footer, path


def test_the_privacy_note_beside_the_needs_is_not_on_the_back_office_form(organizer_client, full_convening):
    convening, registration, _ = full_convening
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{registration.id}/edit").text
    assert "/c/forms/privacy" not in page.split('<footer class="site-footer">', 1)[0]


# -- the organizers' page ----------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["0", "121", "-1", "abc", "2147483648", "1.5"])
def test_retention_out_of_bounds_is_explained_beside_the_field_and_nothing_changes(organizer_client, app, typed):
    convening = make_convening(retention_months=12)
    response = organizer_client.post(f"/admin/c/{convening.id}/privacy",
                                     data={"retention_months": typed, "privacy_notice": "Changed?"})
    assert response.status_code == 200
    error = re.search(r'<p class="error" id="retention_months-error">([^<]+)</p>', response.text)
    assert error and "from 1 to 120" in error.group(1)
    assert 'aria-describedby="retention_months-error"' in response.text
    saved = fresh(convening.id)
    assert (saved.retention_months, saved.privacy_notice) == (12, "")


def test_organizers_save_the_notice_and_retention_and_see_the_default_as_a_preview(organizer_client, app):
    convening = make_convening(name="Dayton Summit", retention_months=None)
    page = organizer_client.get(f"/admin/c/{convening.id}/privacy").text
    assert 'id="default-notice"' in page and "Dayton Summit is run by its organizers" in page
    assert "kept until you erase it" in page
    started = organizer_client.get(f"/admin/c/{convening.id}/privacy?start=default").text
    assert "Dayton Summit is run by its organizers" in form_html(started, 'id="privacy-form"')

    response = organizer_client.post(f"/admin/c/{convening.id}/privacy",
                                     data={"retention_months": "18", "privacy_notice": "Our words.\r\n\r\nMore."})

    assert response.status_code == 302
    saved = fresh(convening.id)
    assert (saved.retention_months, saved.privacy_notice) == (18, "Our words.\n\nMore.")
    page = organizer_client.get(f"/admin/c/{convening.id}/privacy").text
    ends = privacy.retention_ends_on(saved)
    assert f"erased automatically on <strong>{ends.day} {ends:%B %Y}</strong>" in page


def test_the_convening_navigation_links_to_the_privacy_page_for_organizers(organizer_client, app):
    convening = make_convening()
    page = organizer_client.get(f"/admin/c/{convening.id}/").text
    assert f'href="/admin/c/{convening.id}/privacy"' in page


# -- erasing from the back office --------------------------------------------------------------------

def test_erasing_before_the_end_is_refused_and_changes_nothing(organizer_client, app):
    today = date.today()
    convening = make_convening(slug="running", starts_on=today, ends_on=today + timedelta(days=1))
    registration = make_registration(convening, make_ticket(convening), 1)
    page = organizer_client.get(f"/admin/c/{convening.id}/privacy/erase").text
    assert 'id="not-ended"' in page and 'id="erase-form"' not in page
    token = privacy.erasure_preview(convening.id).token

    response = organizer_client.post(f"/admin/c/{convening.id}/privacy/erase",
                                     data={"confirm_slug": "running", "preview": token})

    assert response.status_code == 200 and "once the convening is over" in response.text
    db.session.rollback()
    assert db.session.get(Registration, registration.id).given_name == "Amina1"
    assert fresh(convening.id).personal_data_erased_at is None


@pytest.fixture
def scene(app):
    return build_scene()


def preview_counts(page: str) -> dict[str, int]:
    return {key: int(n) for key, n in re.findall(r'<tr id="erase-([a-z_]+)">.*?<td class="num">(\d+)</td>', page)}


def test_the_erase_page_previews_the_counts_it_then_erases_after_the_slug_is_typed(organizer_client, scene):
    convening = scene.convening
    url = f"/admin/c/{convening.id}/privacy/erase"
    page = organizer_client.get(url).text
    preview = privacy.erasure_preview(convening.id)
    assert preview_counts(page) == preview.counts and preview.counts["registrations"] == 3
    assert "What stays" in page
    token = re.search(r'name="preview" type="hidden" value="([0-9a-f]+)"', page).group(1)
    dashboard = reports.build_dashboard(fresh(convening.id))

    wrong = organizer_client.post(url, data={"confirm_slug": "erase-m", "preview": token})

    assert wrong.status_code == 200
    assert re.search(r'id="confirm_slug-error">Type the convening&#39;s web address, erase-me, exactly as shown',
                     wrong.text)
    assert fresh(convening.id).personal_data_erased_at is None

    done = organizer_client.post(url, data={"confirm_slug": " erase-me ", "preview": token})

    assert done.status_code == 302 and done.headers["Location"].endswith(f"/admin/c/{convening.id}/privacy")
    assert fresh(convening.id).personal_data_erased_at is not None
    assert scan(ERASED_VALUES) == []
    assert [r.erased for r in privacy.erasures_of(convening.id)] == [preview.counts]
    assert privacy.erasures_of(convening.id)[0].erased_by == "organizer@example.org"
    after = organizer_client.get(f"/admin/c/{convening.id}/privacy").text
    assert 'id="erased-on"' in after and "3 registrations" in after
    # The back office still counts everyone, now as "Erased" people.
    listing = organizer_client.get(f"/admin/c/{convening.id}/registrations").text
    assert listing.count(">Erased</a>") == 3 and "Zainabqx" not in listing
    assert organizer_client.get(f"/admin/c/{convening.id}/").status_code == 200
    assert reports.build_dashboard(fresh(convening.id)) == dashboard


def test_a_confirmation_of_a_stale_preview_erases_nothing_and_shows_the_new_one(organizer_client, scene):
    url = f"/admin/c/{scene.convening.id}/privacy/erase"
    token = privacy.erasure_preview(scene.convening.id).token
    registrations_service.add_registration(scene.convening.id, scene.free.id, person(8), send_email=False)

    response = organizer_client.post(url, data={"confirm_slug": "erase-me", "preview": token})

    assert response.status_code == 200 and "Nothing was erased" in response.text
    assert preview_counts(response.text)["registrations"] == 4
    assert fresh(scene.convening.id).personal_data_erased_at is None


def test_after_erasure_emailed_links_give_a_plain_gone_page_and_registration_is_closed(client, scene):
    slug = scene.convening.slug
    zainab = scene.zainab
    links = [f"/c/{slug}/manage/{manage_token(zainab)}", f"/c/{slug}/registered/{manage_token(zainab)}",
             f"/c/{slug}/manage/{manage_token(zainab)}/cancel", f"/c/{slug}/order/{order_token(scene.order)}",
             f"/c/{slug}/order/{order_token(scene.order)}/invoice.pdf"]
    assert [client.get(link).status_code for link in links] == [200, 200, 200, 200, 200]

    privacy.erase_personal_data(scene.convening.id, by="test")

    for link in links:
        response = client.get(link)
        assert response.status_code == 410, link
        assert "This link no longer works" in response.text and "was erased on" in response.text
        assert f'href="/c/{slug}/privacy"' in response.text
    assert client.post(links[2]).status_code == 410
    assert "Registration is closed." in client.get(f"/c/{slug}/register").text
    assert client.post(f"/c/{slug}/register", data={**{k: v for k, v in person(4).items()
                                                       if not isinstance(v, list)},
                                                    "ticket_type_id": scene.free.id}).status_code == 200
    db.session.rollback()
    assert db.session.execute(sa.select(Registration).where(Registration.email == "amina4@example.org")).first() is None
    assert 'id="erased-on"' in client.get(f"/c/{slug}/privacy").text
    someone_else = db.session.execute(sa.select(Registration).where(
        Registration.convening_id == scene.other.id)).scalars().first()
    assert client.get(f"/c/{scene.other.slug}/manage/{manage_token(someone_else)}").status_code == 200


# -- who may -----------------------------------------------------------------------------------------

ROUTES = [("get", "/privacy"), ("post", "/privacy"), ("get", "/privacy/erase"), ("post", "/privacy/erase")]


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("role", ["anonymous", "staff", "organizer"])
def test_privacy_pages_are_for_organizers_only(request, app, method, path, role):
    client = request.getfixturevalue({"anonymous": "client", "staff": "staff_client",
                                      "organizer": "organizer_client"}[role])
    today = date.today()
    convening = make_convening(slug="past", starts_on=today - timedelta(days=9), ends_on=today - timedelta(days=8),
                               retention_months=5)
    registration = make_registration(convening, make_ticket(convening), 1)
    data = {"confirm_slug": "past", "preview": privacy.erasure_preview(convening.id).token,
            "retention_months": "1", "privacy_notice": "Changed"} if method == "post" else None
    response = getattr(client, method)(f"/admin/c/{convening.id}{path}", data=data)
    if role == "anonymous":
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    elif role == "staff":
        assert response.status_code == 403
    else:
        assert response.status_code == (200 if method == "get" else 302)
    changed = role == "organizer" and method == "post"
    db.session.rollback()
    assert (db.session.get(Registration, registration.id).given_name == "Erased") == (changed and "erase" in path)
    assert fresh(convening.id).retention_months == (1 if changed and "erase" not in path else 5)
