"""The program editor: sessions on a day grid and in a list, rooms, presenters, conflicts, allocation.

Staff may look at everything; only organizers change anything.
"""
from __future__ import annotations

import re
from datetime import date

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from convene.admin import bp
from convene.admin.access import allow
from convene.permissions import Permission, can
from convene.admin.confirm import confirm_deletion
from convene.admin.schedule_forms import (
    AllocateForm,
    BlockForm,
    MoveForm,
    PresenterForm,
    RoomForm,
    SessionForm,
    room_choices,
    rules_form,
    rules_from,
)
from convene.admin.util import child_or_404, convening_or_404, date_arg, datetime_arg, int_arg, show_error
from convene.errors import ConveneError
from convene.forms import EmptyForm
from convene.models import Convening, Presenter, Room, SessionBlock
from convene.scheduling import CONFLICT_KINDS, by_session
from convene.services import printing
from convene.services import schedule as service
from convene.services.convenings import utc_to_local


NAV = "admin/schedule/_nav.html"  # the program's tabs, above its confirmation pages too


def _session(convening: Convening, session_id: int):
    try:
        return service.session_of(convening, session_id)
    except ConveneError:
        abort(404)





def _flash_warnings(warnings) -> None:
    for conflict in warnings:
        flash(_("Warning: %(message)s", message=conflict.message), "warning")


def _session_form(convening: Convening, form: SessionForm) -> SessionForm:
    return form.fill_choices(service.rooms_of(convening.id), service.presenters_of(convening.id),
                             service.blocks_of(convening.id), service.slots_of(convening.id), convening)


def _day_arg(convening: Convening, days: list[date]) -> date:
    day = date_arg("day")
    return day if day in days else (days[0] if days else convening.starts_on)


def _back(convening: Convening, session=None):
    """To the grid of the session's day (or the list, when that is where the organizer came from)."""
    if request.args.get("back") == "list":
        return redirect(url_for("admin.schedule_list", convening_id=convening.id,
                                _anchor=f"session-{session.id}" if session else None))
    day = service.local_day(convening, session).isoformat() if session else None
    return redirect(url_for("admin.schedule", convening_id=convening.id, day=day))


# -- views of the program ---------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/schedule")
@allow(Permission.SCHEDULE_VIEW)
def schedule(convening_id: int):
    """One day of the program as a grid: rooms across, time down, conflicts marked."""
    convening = convening_or_404(convening_id)
    view = service.program_view(convening)
    day = _day_arg(convening, view.days)
    grid = service.day_grid(convening, day, view.sessions, view.rooms)
    return render_template("admin/schedule/grid.html", convening=convening, view=view, grid=grid, day=day,
                           publish_form=EmptyForm())


@bp.get("/c/<int:convening_id>/schedule/list")
@allow(Permission.SCHEDULE_VIEW)
def schedule_list(convening_id: int):
    """Every session by day, with its conflicts written out beside it."""
    convening = convening_or_404(convening_id)
    view = service.program_view(convening)
    return render_template("admin/schedule/list.html", convening=convening, view=view,
                           by_day=service.sessions_by_day(convening, view.sessions), publish_form=EmptyForm(),
                           delete_form=EmptyForm())


@bp.get("/c/<int:convening_id>/schedule/sessions/<int:session_id>")
@allow(Permission.SCHEDULE_VIEW)
def schedule_session(convening_id: int, session_id: int):
    """A session with its conflicts and who signed up."""
    convening = convening_or_404(convening_id)
    session = _session(convening, session_id)
    conflicts = by_session(service.program_conflicts(convening)).get(session.id, [])
    return render_template("admin/schedule/session.html", convening=convening, session=session,
                           conflicts=conflicts, signups=service.signups_for(session.id), delete_form=EmptyForm())


def _download(body: bytes, content_type: str, filename: str) -> Response:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", filename)
    return Response(body, content_type=content_type, headers={"Content-Disposition": f"attachment; filename={safe}"})


@bp.get("/c/<int:convening_id>/schedule/sessions/<int:session_id>/sign-in.pdf")
@allow(Permission.SCHEDULE_VIEW)
def schedule_session_sign_in(convening_id: int, session_id: int):
    """A session's sign-in sheet: who signed up, by family name, and blank lines for walk-ins."""
    convening = convening_or_404(convening_id)
    session = _session(convening, session_id)
    paper = "a4" if request.args.get("paper") == "a4" else "letter"
    pdf = printing.render_session_roster_pdf(convening, session, paper=paper)
    return _download(pdf, "application/pdf", f"{convening.slug}-session-{session.id}-sign-in.pdf")


@bp.get("/c/<int:convening_id>/schedule/sessions/<int:session_id>/attendees.csv")
@allow(Permission.SCHEDULE_VIEW)
def schedule_session_csv(convening_id: int, session_id: int):
    """Who signed up for a session, as a spreadsheet."""
    convening = convening_or_404(convening_id)
    session = _session(convening, session_id)
    text = printing.session_roster_csv(convening, session)
    return _download(text.encode("utf-8"), "text/csv; charset=utf-8",
                     f"{convening.slug}-session-{session.id}-attendees.csv")


@bp.route("/c/<int:convening_id>/schedule/sessions/new", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_new_session(convening_id: int):
    """Add a session (the grid's empty cells prefill the room and start)."""
    convening = convening_or_404(convening_id)
    if request.method == "POST":
        form = SessionForm()
    else:
        form = SessionForm(data=_prefill(convening))
    _session_form(convening, form)
    if form.validate_on_submit():
        try:
            saved = service.create_session(convening.id, form.session_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(title)s is added to the program.", title=saved.session.title), "success")
            _flash_warnings(saved.warnings)
            return _back(convening, saved.session)
    return render_template("admin/schedule/session_form.html", convening=convening, form=form, session=None,
                           mode="new")


def _prefill(convening: Convening) -> dict:
    """Room and start from the query string (a link from an empty grid cell); bad values are ignored."""
    data: dict = {}
    start = datetime_arg("starts_at")
    if start is not None:
        start = utc_to_local(start, convening.tz) if start.tzinfo else start
        data["starts_at"] = start
    room = int_arg("room_id")
    if room is not None:
        data["room_id"] = room
    return data


@bp.route("/c/<int:convening_id>/schedule/sessions/<int:session_id>/edit", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_edit_session(convening_id: int, session_id: int):
    """Change a session; a change that creates a blocking conflict is refused beside the field."""
    convening = convening_or_404(convening_id)
    session = _session(convening, session_id)
    form = SessionForm() if request.method == "POST" else SessionForm.for_session(session, convening)
    _session_form(convening, form)
    if form.validate_on_submit():
        try:
            saved = service.update_session(session.id, form.session_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(title)s is saved.", title=saved.session.title), "success")
            _flash_warnings(saved.warnings)
            return _back(convening, saved.session)
    return render_template("admin/schedule/session_form.html", convening=convening, form=form, session=session,
                           mode="edit", delete_form=EmptyForm())


@bp.route("/c/<int:convening_id>/schedule/sessions/<int:session_id>/duplicate", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_duplicate_session(convening_id: int, session_id: int):
    """Copy a session (presenters too) to another time or room."""
    convening = convening_or_404(convening_id)
    session = _session(convening, session_id)
    if request.method == "POST":
        form = SessionForm()
    else:
        form = SessionForm.for_session(session, convening, title=_("%(title)s (copy)", title=session.title))
    _session_form(convening, form)
    if form.validate_on_submit():
        try:
            saved = service.duplicate_session(session.id, form.session_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(title)s is added to the program.", title=saved.session.title), "success")
            _flash_warnings(saved.warnings)
            return _back(convening, saved.session)
    return render_template("admin/schedule/session_form.html", convening=convening, form=form, session=session,
                           mode="duplicate")


@bp.route("/c/<int:convening_id>/schedule/sessions/<int:session_id>/move", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_move_session(convening_id: int, session_id: int):
    """Move a session to another start and room, keeping its length."""
    convening = convening_or_404(convening_id)
    session = _session(convening, session_id)
    if request.method == "POST":
        form = MoveForm()
    else:
        form = MoveForm(data={"starts_at": utc_to_local(session.starts_at, convening.tz), "room_id": session.room_id})
    form.room_id.choices = room_choices(service.rooms_of(convening.id))
    if form.validate_on_submit():
        try:
            saved = service.move_session(session.id, form.starts_at.data, form.room_id.data)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(title)s is moved to %(when)s.", title=saved.session.title,
                    when=service.span(convening, saved.session.starts_at, saved.session.ends_at)), "success")
            _flash_warnings(saved.warnings)
            return _back(convening, saved.session)
    return render_template("admin/schedule/move.html", convening=convening, form=form, session=session)


@bp.route("/c/<int:convening_id>/schedule/sessions/<int:session_id>/delete", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_delete_session(convening_id: int, session_id: int):
    """Show who deleting a session affects, then delete it on confirmation (with a reason once published)."""
    convening = convening_or_404(convening_id)
    session = _session(convening, session_id)
    day = service.local_day(convening, session).isoformat()
    form = EmptyForm()
    reason, reason_error = request.form.get("reason", "")[:1000], None
    if form.validate_on_submit() and "preview" in request.form:
        try:
            # The token names the previewed sign-ups: a different set gets a new confirmation page.
            title = service.delete_session(session.id, reason=reason, expected=request.form.get("preview", ""))
        except ConveneError as error:
            if error.field == "reason":
                reason_error = error.message
            else:
                flash(error.message, "error")
        else:
            flash(_("%(title)s is deleted from the program.", title=title), "success")
            return redirect(url_for("admin.schedule", convening_id=convening.id, day=day))
    return render_template("admin/schedule/confirm_delete.html", convening=convening, form=form,
                           deletion=service.deletion_preview(session.id), reason=reason, reason_error=reason_error)


# -- publishing and rules ---------------------------------------------------------------------------

@bp.route("/c/<int:convening_id>/schedule/publish", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_publish(convening_id: int):
    """List the open warnings, then publish the program over exactly those on confirmation."""
    convening = convening_or_404(convening_id)
    form = EmptyForm()
    if form.validate_on_submit() and "preview" in request.form:
        try:
            warned = service.publish_program(convening.id, expected=request.form.get("preview", ""))
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(ngettext("The program is published over %(num)d open warning.",
                           "The program is published over %(num)d open warnings.", warned) if warned
                  else _("The program is published."), "success")
            return redirect(url_for("admin.schedule", convening_id=convening.id))
    view = service.program_view(convening)
    return render_template("admin/schedule/publish.html", convening=convening, form=form, view=view,
                           token=service.warnings_token(view.conflicts))


@bp.post("/c/<int:convening_id>/schedule/unpublish")
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_unpublish(convening_id: int):
    """Take the program back to draft."""
    convening = convening_or_404(convening_id)
    if EmptyForm().validate_on_submit():
        service.unpublish_program(convening.id)
        flash(_("The program is back to draft: only organizers and staff see it."), "success")
    return redirect(url_for("admin.schedule", convening_id=convening.id))


@bp.route("/c/<int:convening_id>/schedule/rules", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_VIEW, Permission.SCHEDULE_MANAGE)
def schedule_rules(convening_id: int):
    """Choose which kinds of conflict are blocking and which are warnings."""
    convening = convening_or_404(convening_id)
    rules = service.conflict_rules(convening.id)
    form = rules_form(rules, formdata=request.method == "POST")
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                service.set_conflict_rules(convening.id, rules_from(form))
            except ConveneError as error:
                show_error(form, error)
            else:
                flash(_("The conflict rules are saved."), "success")
                return redirect(url_for("admin.schedule_rules", convening_id=convening.id))
    return render_template("admin/schedule/rules.html", convening=convening, form=form, kinds=CONFLICT_KINDS,
                           can_edit=can(current_user, Permission.SCHEDULE_MANAGE, convening))


# -- rooms ------------------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/schedule/rooms")
@allow(Permission.SCHEDULE_VIEW)
def schedule_rooms(convening_id: int):
    """The rooms, with their size and access."""
    convening = convening_or_404(convening_id)
    return render_template("admin/schedule/rooms.html", convening=convening, rooms=service.rooms_of(convening.id))


@bp.route("/c/<int:convening_id>/schedule/rooms/new", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_new_room(convening_id: int):
    """Add a room."""
    convening = convening_or_404(convening_id)
    form = RoomForm()
    if form.validate_on_submit():
        try:
            room = service.create_room(convening.id, form.room_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("Room %(name)s is added.", name=room.name), "success")
            return redirect(url_for("admin.schedule_rooms", convening_id=convening.id))
    return render_template("admin/schedule/room_form.html", convening=convening, form=form, room=None)


@bp.route("/c/<int:convening_id>/schedule/rooms/<int:room_id>", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_edit_room(convening_id: int, room_id: int):
    """Change a room."""
    convening = convening_or_404(convening_id)
    room = child_or_404(Room, convening, room_id)
    form = RoomForm() if request.method == "POST" else RoomForm.for_room(room)
    if form.validate_on_submit():
        try:
            _room, warnings = service.update_room(room.id, form.room_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The room is saved."), "success")
            _flash_warnings(warnings)
            return redirect(url_for("admin.schedule_rooms", convening_id=convening.id))
    return render_template("admin/schedule/room_form.html", convening=convening, form=form, room=room)


@bp.route("/c/<int:convening_id>/schedule/rooms/<int:room_id>/delete", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_delete_room(convening_id: int, room_id: int):
    """Say which sessions keep a room (so it cannot go yet), else delete it on confirmation."""
    convening = convening_or_404(convening_id)
    room = child_or_404(Room, convening, room_id)
    return confirm_deletion(convening, lambda: service.room_deletion(room.id),
                            lambda token: service.delete_room(room.id, expected=token),
                            back=url_for("admin.schedule_edit_room", convening_id=convening.id, room_id=room.id),
                            after=url_for("admin.schedule_rooms", convening_id=convening.id), nav=NAV)


# -- presenters -------------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/schedule/presenters")
@allow(Permission.SCHEDULE_VIEW)
def schedule_presenters(convening_id: int):
    """Who presents or facilitates, and in which sessions."""
    convening = convening_or_404(convening_id)
    return render_template("admin/schedule/presenters.html", convening=convening,
                           presenters=service.presenters_of(convening.id))


@bp.route("/c/<int:convening_id>/schedule/presenters/new", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_new_presenter(convening_id: int):
    """Add a presenter: a registered person or an external guest."""
    convening = convening_or_404(convening_id)
    form = PresenterForm().fill_choices(service.registration_choices(convening.id))
    if form.validate_on_submit():
        try:
            presenter = service.create_presenter(convening.id, form.presenter_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(name)s is added as a presenter.", name=presenter.display_name), "success")
            return redirect(url_for("admin.schedule_presenters", convening_id=convening.id))
    return render_template("admin/schedule/presenter_form.html", convening=convening, form=form, presenter=None)


@bp.route("/c/<int:convening_id>/schedule/presenters/<int:presenter_id>", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_edit_presenter(convening_id: int, presenter_id: int):
    """Change a presenter."""
    convening = convening_or_404(convening_id)
    presenter = child_or_404(Presenter, convening, presenter_id)
    form = PresenterForm() if request.method == "POST" else PresenterForm.for_presenter(presenter)
    form.fill_choices(service.registration_choices(convening.id))
    if form.validate_on_submit():
        try:
            _presenter, warnings = service.update_presenter(presenter.id, form.presenter_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The presenter is saved."), "success")
            _flash_warnings(warnings)
            return redirect(url_for("admin.schedule_presenters", convening_id=convening.id))
    return render_template("admin/schedule/presenter_form.html", convening=convening, form=form,
                           presenter=presenter)


@bp.route("/c/<int:convening_id>/schedule/presenters/<int:presenter_id>/delete", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_delete_presenter(convening_id: int, presenter_id: int):
    """Say which sessions lose a presenter, then remove them on confirmation (the sessions stay)."""
    convening = convening_or_404(convening_id)
    presenter = child_or_404(Presenter, convening, presenter_id)
    return confirm_deletion(convening, lambda: service.presenter_deletion(presenter.id),
                            lambda token: service.delete_presenter(presenter.id, expected=token),
                            back=url_for("admin.schedule_edit_presenter", convening_id=convening.id,
                                         presenter_id=presenter.id),
                            after=url_for("admin.schedule_presenters", convening_id=convening.id), nav=NAV)


# -- blocks and allocation --------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/schedule/blocks")
@allow(Permission.SCHEDULE_VIEW)
def schedule_blocks(convening_id: int):
    """Blocks of parallel sessions that attendees rank and organizers allocate."""
    convening = convening_or_404(convening_id)
    return render_template("admin/schedule/blocks.html", convening=convening, blocks=service.blocks_of(convening.id),
                           taken=service.seats_taken(convening.id))


@bp.route("/c/<int:convening_id>/schedule/blocks/new", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_new_block(convening_id: int):
    """Add a block; put sessions in it from their edit form (opening its ranking is confirmed first)."""
    return _block_page(convening_or_404(convening_id), None)


@bp.route("/c/<int:convening_id>/schedule/blocks/<int:block_id>", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_edit_block(convening_id: int, block_id: int):
    """Rename a block, open or close ranking (opening it is confirmed first)."""
    convening = convening_or_404(convening_id)
    return _block_page(convening, child_or_404(SessionBlock, convening, block_id))


def _block_page(convening: Convening, block: SessionBlock | None):
    """The block form; a save that opens ranking first shows everyone it emails, and saves on confirmation."""
    form = BlockForm() if request.method == "POST" or block is None else BlockForm(obj=block)
    if form.validate_on_submit():
        opening = form.preferences_open.data and not (block is not None and block.preferences_open)
        if opening and "preview" not in request.form:
            return _ranking_confirmation(convening, block, form)
        try:
            # The token names the people the organizer saw: a different set gets a new confirmation page.
            saved = service.save_block(convening.id, form.block_data(), block_id=block.id if block else None,
                                       expected=request.form.get("preview", "") if opening else None)
        except ConveneError as error:
            if error.code == "ranking_audience_changed":
                flash(error.message, "error")
                return _ranking_confirmation(convening, block, form)
            show_error(form, error)
        else:
            said = (_("Block %(name)s is added. Choose it on the sessions that belong to it.", name=saved.name)
                    if block is None else _("The block is saved."))
            if saved.notified:
                said += " " + ngettext("Ranking is open; %(num)d person was emailed to rank its sessions.",
                                       "Ranking is open; %(num)d people were emailed to rank its sessions.",
                                       saved.notified)
            flash(said, "success")
            return redirect(url_for("admin.schedule_blocks", convening_id=convening.id))
    return render_template("admin/schedule/block_form.html", convening=convening, form=form, block=block,
                           audience=service.ranking_audience(convening.id))


def _ranking_confirmation(convening: Convening, block: SessionBlock | None, form: BlockForm):
    audience = service.ranking_audience(convening.id)
    return render_template("admin/schedule/open_ranking.html", convening=convening, block=block, form=form,
                           audience=audience, token=service.audience_token(audience))


@bp.route("/c/<int:convening_id>/schedule/blocks/<int:block_id>/delete", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_MANAGE, Permission.SCHEDULE_MANAGE)
def schedule_delete_block(convening_id: int, block_id: int):
    """Say which sessions leave a block and whose rankings go, then delete it on confirmation."""
    convening = convening_or_404(convening_id)
    block = child_or_404(SessionBlock, convening, block_id)
    return confirm_deletion(convening, lambda: service.block_deletion(block.id),
                            lambda token: service.delete_block(block.id, expected=token),
                            back=url_for("admin.schedule_edit_block", convening_id=convening.id, block_id=block.id),
                            after=url_for("admin.schedule_blocks", convening_id=convening.id), nav=NAV)


@bp.route("/c/<int:convening_id>/schedule/blocks/<int:block_id>/allocate", methods=["GET", "POST"])
@allow(Permission.SCHEDULE_VIEW, Permission.SCHEDULE_MANAGE)
def schedule_allocate(convening_id: int, block_id: int):
    """Rankings so far; allocating previews who goes where and whom it emails, then commits exactly that."""
    convening = convening_or_404(convening_id)
    block = child_or_404(SessionBlock, convening, block_id)
    form = AllocateForm()
    plan = None
    if request.method == "POST":
        if form.validate_on_submit():
            include = form.include_unranked.data
            preview = "preview" not in request.form
            if not preview:
                try:
                    result = service.allocate_sessions(convening.id, block.id, include_unranked=include,
                                                       expected=request.form.get("preview", ""))
                except ConveneError as error:
                    flash(error.message, "error")
                    preview = error.code == "allocation_preview_changed"  # show what it would do now
                else:
                    flash(_allocation_summary(result), "success" if not result.unassigned else "warning")
                    return redirect(url_for("admin.schedule_allocate", convening_id=convening.id, block_id=block.id))
            if preview:
                try:
                    plan = service.allocation_preview(convening.id, block.id, include_unranked=include)
                except ConveneError as error:
                    flash(error.message, "error")
    return render_template("admin/schedule/allocate.html", convening=convening, block=block, form=form,
                           report=service.block_report(block), plan=plan)


def _allocation_summary(result) -> str:
    """What allocating did, for the message after it: placed, not placed (by name), emailed."""
    unplaced = "; ".join(f"{registration.full_name} ({reason})" for registration, reason in result.unassigned)
    said = [_("%(placed)s of %(people)s people are placed (optimal).", placed=result.placed, people=result.people)
            if result.optimal else
            _("%(placed)s of %(people)s people are placed.", placed=result.placed, people=result.people)]
    if result.unassigned:
        said.append(_("%(count)s could not be placed: %(names)s.", count=len(result.unassigned), names=unplaced))
    said.append(ngettext("%(num)d person was emailed their session.", "%(num)d people were emailed their session.",
                         result.emailed))
    return " ".join(said)
