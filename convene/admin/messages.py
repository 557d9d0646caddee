"""Messages to registrants: history, compose, audience and preview, test send, send or schedule, cancel."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from convene import jobs
from convene.admin import bp
from convene.admin.access import allow
from convene.admin.message_forms import SendForm, TestForm, draft_from, message_form
from convene.admin.util import child_or_404, convening_or_404, int_arg, show_error
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import EmptyForm
from convene.models import Message, Registration
from convene.models.messages import EDITABLE, MESSAGE_STATUS_LABELS, SENDABLE
from convene.permissions import Permission
from convene.services import messages as service
from convene.services.convenings import local_to_utc
from convene.services.message_text import PLACEHOLDERS

PREVIEW_CHOICES = 200  # people offered in "preview as"


@bp.get("/c/<int:convening_id>/messages")
@allow(Permission.MESSAGES)
def messages(convening_id: int):
    """Every message written for this convening, and the automatic emails, with their counts."""
    convening = convening_or_404(convening_id)
    # Without `flask convene scheduler` nothing sweeps; a message that came due starts when the team looks.
    service.start_due_messages(convening_id=convening.id)
    return render_template("admin/messages/list.html", convening=convening,
                           messages=service.list_messages(convening.id),
                           automatic=service.automatic_emails(convening.id), labels=MESSAGE_STATUS_LABELS,
                           summary=lambda m: service.filter_summary(convening, m.filter),
                           bounced=service.bounced_count(convening.id))


@bp.route("/c/<int:convening_id>/messages/new", methods=["GET", "POST"])
@allow(Permission.MESSAGES, Permission.MESSAGES)
def new_message(convening_id: int):
    """Write a message: its text in each language, and who it goes to."""
    convening = convening_or_404(convening_id)
    form = message_form(convening)
    if form.validate_on_submit():
        try:
            message = service.save_message(convening.id, draft_from(form), author_id=current_user.id)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The draft is saved. Check who it reaches and how it reads, then send it."), "success")
            return redirect(url_for("admin.message", convening_id=convening.id, message_id=message.id))
    return _compose(convening, form, None)


@bp.route("/c/<int:convening_id>/messages/<int:message_id>/edit", methods=["GET", "POST"])
@allow(Permission.MESSAGES, Permission.MESSAGES)
def edit_message(convening_id: int, message_id: int):
    """Change a draft or a scheduled message."""
    convening = convening_or_404(convening_id)
    message = child_or_404(Message, convening, message_id)
    if message.status not in EDITABLE:
        flash(_("This message is being sent or was sent; it can no longer change."), "error")
        return redirect(url_for("admin.message", convening_id=convening.id, message_id=message.id))
    form = message_form(convening, message)
    if form.validate_on_submit():
        try:
            service.save_message(convening.id, draft_from(form), message_id=message.id)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The message is saved."), "success")
            return redirect(url_for("admin.message", convening_id=convening.id, message_id=message.id))
    return _compose(convening, form, message)


def _compose(convening, form, message):
    status = 400 if form.errors else 200
    return render_template("admin/messages/form.html", convening=convening, form=form, message=message,
                           placeholders=PLACEHOLDERS, language_name=service.language_name), status


@bp.get("/c/<int:convening_id>/messages/<int:message_id>")
@allow(Permission.MESSAGES)
def message(convening_id: int, message_id: int):
    """One message: who it reaches (or reached), a preview as one of them, progress, and what to do next."""
    convening = convening_or_404(convening_id)
    message = child_or_404(Message, convening, message_id)
    if message.status == "scheduled" and service.start_due_messages(convening_id=convening.id):
        db.session.refresh(message)
    return _message_page(convening, message)


def _message_page(convening, message, *, send_form=None, status: int = 200):
    audience = service.audience(message) if message.status in SENDABLE else None
    people = service.matching_registrations(convening, service.RecipientFilter.from_json(message.filter))
    choices = people[:PREVIEW_CHOICES]
    wanted = int_arg("as")
    shown = next((p for p in people if p.id == wanted), None) or (choices[0] if choices else None)
    preview = service.preview_message(message, shown) if shown is not None else None
    test_form = TestForm(formdata=None, data={"as_registration": shown.id if shown else 0})
    test_form.as_registration.choices = [(p.id, f"{p.full_name} ({p.reference})") for p in choices]
    job = jobs.get_job(message.job_id) if message.job_id else None
    return render_template(
        "admin/messages/detail.html", convening=convening, message=message, audience=audience, preview=preview,
        shown=shown, choices=choices, test_form=test_form, send_form=send_form or SendForm(formdata=None),
        button_form=EmptyForm(), job=job, labels=MESSAGE_STATUS_LABELS, language_name=service.language_name,
        summary=service.filter_summary(convening, message.filter),
        recipients=service.recipients_of(message.id) if message.status not in EDITABLE else [],
    ), status


@bp.post("/c/<int:convening_id>/messages/<int:message_id>/send")
@allow(Permission.MESSAGES, Permission.MESSAGES)
def send_message(convening_id: int, message_id: int):
    """Send the message now, or schedule it (a time in the convening's zone)."""
    convening = convening_or_404(convening_id)
    message = child_or_404(Message, convening, message_id)
    form = SendForm()
    if not form.validate_on_submit():
        return _message_page(convening, message, send_form=form, status=400)
    try:
        at = local_to_utc(form.send_at.data, convening.tz, "send_at") if form.send_at.data else None
        message = service.send_message(message.id, at=at, requested_by=current_user.id)
    except ConveneError as error:
        if error.field:
            show_error(form, error)
            return _message_page(convening, message, send_form=form, status=400)
        flash(error.message, "error")
    else:
        if message.status == "scheduled":
            flash(_("The message is scheduled for %(local)s.",
                    local=format(convening.local(message.scheduled_for), '%a %d %b %Y, %H:%M %Z')),
                  "success")
        else:
            flash(_("The message is on its way; this page shows how far it got."), "success")
    return redirect(url_for("admin.message", convening_id=convening.id, message_id=message_id))


@bp.post("/c/<int:convening_id>/messages/<int:message_id>/test")
@allow(Permission.MESSAGES, Permission.MESSAGES)
def test_message(convening_id: int, message_id: int):
    """Email the message to oneself, as the chosen person would read it."""
    convening = convening_or_404(convening_id)
    message = child_or_404(Message, convening, message_id)
    form = TestForm()
    if not form.validate_on_submit():
        flash(_("Choose whose version to send to yourself."), "error")
        return redirect(url_for("admin.message", convening_id=convening.id, message_id=message.id))
    person = db.session.get(Registration, form.as_registration.data or 0)
    service.send_test_message(message.id, current_user.email,
                              person.id if person is not None and person.convening_id == convening.id else None)
    flash(_("A test copy is on its way to %(email)s.", email=current_user.email), "success")
    return redirect(url_for("admin.message", convening_id=convening.id, message_id=message.id,
                            **({"as": person.id} if person is not None else {})))


@bp.post("/c/<int:convening_id>/messages/<int:message_id>/cancel")
@allow(Permission.MESSAGES, Permission.MESSAGES)
def cancel_message(convening_id: int, message_id: int):
    """Stop a draft or scheduled message from going out."""
    convening = convening_or_404(convening_id)
    message = child_or_404(Message, convening, message_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        service.cancel_message(message.id, convening.id)
    except ConveneError as error:
        flash(error.message, "error")
    else:
        flash(_("The message is cancelled; nobody gets it."), "success")
    return redirect(url_for("admin.message", convening_id=convening.id, message_id=message.id))


@bp.post("/c/<int:convening_id>/messages/<int:message_id>/retry")
@allow(Permission.MESSAGES, Permission.MESSAGES)
def retry_message(convening_id: int, message_id: int):
    """Run a message's failed sending job again: nobody it already reached gets it twice."""
    convening = convening_or_404(convening_id)
    message = child_or_404(Message, convening, message_id)
    if not EmptyForm().validate_on_submit() or message.job_id is None:
        abort(400)
    try:
        jobs.retry(message.job_id)
    except ConveneError as error:
        flash(error.message, "error")
    else:
        flash(_("Sending again: people it already reached are skipped."), "success")
    return redirect(url_for("admin.message", convening_id=convening.id, message_id=message.id))



