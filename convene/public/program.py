"""The public program, session pages, calendars, and the attendee's agenda, sign-ups and rankings."""
from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_wtf import FlaskForm

from convene.errors import ConveneError, message_for
from convene.forms import (
    ORDINALS,
    RANK_LABELS,
    EmptyForm,
    add_interpretation_field,
    add_question_fields,
    answers_to_form_data,
    choice_list,
    rank_select,
)
from convene.i18n import current_language, request_convening
from convene.languages import localized
from convene.models import Convening, Registration, SessionBlock, Status
from convene.page_cache import cached_page
from convene.public import bp
from convene.public.forms import ManageForm
from convene.public.routes import _manage_context, _manage_page, published_convening, registration_from_token
from convene.services import schedule as service
from convene.services.registrations import external_url

CALENDAR_TYPE = "text/calendar; charset=utf-8"


def _program_convening(slug: str) -> Convening:
    """The published convening the URL names, read once with its program revision (the cache's key)."""
    convening = request_convening()  # the query that picks the page's language, reused
    if convening is None or convening.slug != slug:
        return published_convening(slug)  # asked again: a 404, or the database's own error (not a 404)
    if not convening.published:
        abort(404)
    return convening


def _session_url(convening: Convening):
    return lambda session: external_url("public.program_session", slug=convening.slug, session_id=session.id)


def _calendar(body: bytes, filename: str) -> Response:
    return Response(body, content_type=CALENDAR_TYPE,
                    headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-cache"})


def _cached(convening: Convening, page: str, render, **options) -> Response:
    """The page everyone gets, from the cache while the program is unchanged (convene.page_cache)."""
    def render_published(seats_left) -> str:
        if not service.is_published(convening.id):  # publishing and unpublishing bump the revision
            abort(404)
        return render(seats_left)

    return cached_page(convening, page, current_language(), render_published,
                       seats_taken=lambda: service.seats_taken(convening.id), **options)


@bp.get("/c/<slug>/program")
def program(slug: str):
    """The published program by day, with rooms, local times and presenters."""
    convening = _program_convening(slug)

    def render(seats_left) -> str:
        sessions = service.sessions_of(convening.id)
        return render_template("public/program.html", convening=convening,
                               by_day=service.sessions_by_day(convening, sessions), seats_left=seats_left)

    return _cached(convening, "program", render)


@bp.get("/c/<slug>/program/<int:session_id>")
def program_session(slug: str, session_id: int):
    """One session: when, where, who presents, seats left."""
    convening = _program_convening(slug)

    def render(seats_left) -> str:
        try:
            session = service.session_of(convening, session_id)
        except ConveneError:
            abort(404)
        return render_template("public/program_session.html", convening=convening, session=session,
                               seats_left=seats_left)

    return _cached(convening, f"session/{session_id}", render)


@bp.get("/c/<slug>/program.ics")
def program_calendar(slug: str):
    """The whole program as an iCalendar file (subscribe to it: entries update in place)."""
    convening = _program_convening(slug)

    def render(seats_left) -> str:
        return service.program_calendar(convening, _session_url(convening)).decode()

    # Its links are absolute: one copy per address the site is reached at.
    root = current_app.config.get("BASE_URL") or request.host_url
    return _cached(convening, "calendar", render, content_type=CALENDAR_TYPE, root=root, headers={
        "Content-Disposition": f'inline; filename="{convening.slug}-program.ics"'})


@bp.get("/c/<slug>/manage/<token>/agenda.ics")
def agenda_calendar(slug: str, token: str):
    """One attendee's agenda as an iCalendar file."""
    convening = published_convening(slug)
    try:
        registration = registration_from_token(convening, token)
    except ConveneError:
        abort(404)
    return _calendar(service.agenda_calendar(convening, registration, _session_url(convening)),
                     f"{convening.slug}-my-agenda.ics")


@bp.get("/c/<slug>/manage/<token>/agenda.pdf")
def agenda_pdf(slug: str, token: str):
    """One attendee's personal agenda as a PDF to print or keep on a phone."""
    from convene.services.printing import render_agenda_pdf

    convening = published_convening(slug)
    try:
        registration = registration_from_token(convening, token)
        pdf = render_agenda_pdf(convening.id, registration.id)
    except ConveneError:
        abort(404)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{convening.slug}-my-agenda.pdf"', "Cache-Control": "no-store"})


# ---------------------------------------------------------------- the manage page's part


def block_ranking_form(block: SessionBlock, formdata: bool = True, ranking: list[int] | None = None) -> FlaskForm:
    """One select per rank ("1st choice"...) over the block's sessions, so ranking works without JavaScript."""
    sessions = block.sessions
    names = [f"rank_{n}" for n in range(1, min(len(sessions), len(ORDINALS)) + 1)]
    options = choice_list([("", gettext("— no preference —"))] + [(str(s.id), localized(s, 'title')) for s in sessions])
    fields = {
        name: rank_select(RANK_LABELS[n], options) for n, name in enumerate(names)
    }

    def validate(self, extra_validators=None):
        ok = FlaskForm.validate(self, extra_validators)
        seen: set[str] = set()
        for name in names:
            value = getattr(self, name).data
            if value and value in seen:
                getattr(self, name).errors.append(gettext("You chose this session already; pick each session once."))
                ok = False
            seen.add(value)
        return ok

    def session_ids(self) -> list[int]:
        return [int(v) for name in names if (v := getattr(self, name).data)]

    form_class = type("BlockRankingForm", (FlaskForm,),
                      {**fields, "validate": validate, "session_ids": session_ids, "rank_fields": names})
    prefix = f"block{block.id}"
    if formdata:
        return form_class(prefix=prefix)
    return form_class(prefix=prefix, formdata=None,
                      data={name: str(sid) for name, sid in zip(names, ranking or [])})


def program_context(convening: Convening, registration: Registration, ranking_forms: dict | None = None) -> dict:
    """What the manage page shows about the program: the personal agenda, sign-ups and rankings."""
    ranking_forms = ranking_forms or {}
    blocks = service.open_blocks(convening) if registration.status == Status.CONFIRMED else []
    return {
        "agenda": service.personal_agenda(convening, registration),
        "program_published": service.is_published(convening.id),
        "signup_options": service.signup_options(convening, registration),
        "ranking_blocks": [
            (block, ranking_forms.get(block.id) or block_ranking_form(
                block, formdata=False, ranking=service.ranking_for(registration.id, block.id)))
            for block in blocks
        ],
        "signup_form": EmptyForm(),
    }


def _back_to_agenda(slug: str, token: str):
    return redirect(url_for("public.manage", slug=slug, token=token, _anchor="agenda"))


@bp.post("/c/<slug>/manage/<token>/sessions/<int:session_id>/signup")
def session_signup(slug: str, token: str, session_id: int):
    """Take a seat in a session that needs sign-up."""
    convening, registration = _manage_context(slug, token)
    if registration is None:
        return redirect(url_for("public.manage_link", slug=slug))
    if EmptyForm().validate_on_submit():
        try:
            signup = service.sign_up(registration.id, session_id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(gettext("You are signed up for %(title)s.", title=localized(signup.session, 'title')), "success")
    return _back_to_agenda(slug, token)


@bp.post("/c/<slug>/manage/<token>/sessions/<int:session_id>/leave")
def session_leave(slug: str, token: str, session_id: int):
    """Give a seat back."""
    convening, registration = _manage_context(slug, token)
    if registration is None:
        return redirect(url_for("public.manage_link", slug=slug))
    if EmptyForm().validate_on_submit():
        try:
            service.leave_session(registration.id, session_id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(gettext("You have left the session; your seat is free for someone else."), "success")
    return _back_to_agenda(slug, token)


@bp.post("/c/<slug>/manage/<token>/sessions/rank/<int:block_id>")
def rank_sessions(slug: str, token: str, block_id: int):
    """Save an attendee's ranking of a block's sessions."""
    convening, registration = _manage_context(slug, token)
    if registration is None:
        return redirect(url_for("public.manage_link", slug=slug))
    block = next((b for b in service.open_blocks(convening) if b.id == block_id), None)
    if block is None:
        flash(message_for("preferences_closed"), "error")
        return _back_to_agenda(slug, token)
    form = block_ranking_form(block)
    if form.validate_on_submit():
        try:
            service.set_session_preferences(registration.id, block.id, form.session_ids())
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(gettext("Your ranking for %(block)s is saved.", block=block.name), "success")
            return _back_to_agenda(slug, token)
    # Show the errors beside the choices, on the page they came from.
    manage_form = add_interpretation_field(add_question_fields(ManageForm, convening.questions), convening)(
        formdata=None, obj=registration, data=answers_to_form_data(registration, convening.questions))
    return _manage_page(convening, registration, token, manage_form, ranking_forms={block.id: form}), 400
