"""Convenings, ticket types, questions, delegations and the dashboard."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for

from flask_babel import gettext as _
from flask_login import current_user

from convene import jobs
from convene.admin import bp
from convene.admin.access import ADMIN, SIGNED_IN, allow
from convene.permissions import Permission, can, visible_convening_ids
from convene.admin.confirm import confirm_deletion
from convene.admin.forms import COMMON_TIMEZONES, ConveningForm, DelegationForm, QuestionForm, TicketTypeForm
from convene.admin.util import child_or_404, convening_or_404, show_error
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import EmptyForm
from convene.models import Convening, Delegation, Question, TicketType, utcnow
from convene.services import convenings as service
from convene.services import merges, payment_reports, reports
from convene.services.registrations import expire_offers, seat_usage
from convene.services.stripe_api import stripe_configured


def _form(form_class, fill):
    """The submitted form on POST, else one filled from what is stored."""
    return form_class() if request.method == "POST" else fill()





@bp.get("/")
@allow(SIGNED_IN)
def index():
    """List the convenings the account has a role on (every one for administrators), with registration counts."""
    query = sa.select(Convening).order_by(Convening.starts_on.desc())
    visible = visible_convening_ids(current_user)
    if visible is not None:
        query = query.where(Convening.id.in_(visible))
    convenings = db.session.execute(query).scalars().all()
    return render_template("admin/index.html", convenings=convenings, counts=reports.counts_by_convening(),
                           now=utcnow())


@bp.get("/c/<int:convening_id>/")
@allow(Permission.VIEW)
def dashboard(convening_id: int):
    """Counts at a glance: statuses, tickets, seats, needs, roles, delegations, registrations over time."""
    convening = convening_or_404(convening_id)
    expire_offers(convening.id)  # so "seat offered" counts only offers that still hold
    health = jobs.queue_health(convening.id) if can(current_user, Permission.EDIT, convening) else None
    return render_template("admin/dashboard.html", convening=convening, report=reports.build_dashboard(convening),
                           pay=payment_reports.dashboard_payments(convening), stripe_ready=stripe_configured(),
                           health=health, labels=jobs.KIND_LABELS)


# -- settings --------------------------------------------------------------------------------------

@bp.route("/c/new", methods=["GET", "POST"])
@allow(ADMIN, ADMIN)
def new_convening():
    """Create a convening."""
    form = ConveningForm()
    if form.validate_on_submit():
        try:
            convening = service.create_convening(form.convening_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(convening)s is created. Add its ticket types next.", convening=convening.name), "success")
            return redirect(url_for("admin.tickets", convening_id=convening.id))
    return render_template("admin/convenings/settings.html", form=form, convening=None, timezones=COMMON_TIMEZONES)


@bp.route("/c/<int:convening_id>/settings", methods=["GET", "POST"])
@allow(Permission.SETUP_VIEW, Permission.EDIT)
def edit_convening(convening_id: int):
    """Change a convening's settings."""
    convening = convening_or_404(convening_id)
    form = _form(ConveningForm, lambda: ConveningForm.for_convening(convening))
    if form.validate_on_submit():
        try:
            service.update_convening(convening.id, form.convening_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The settings are saved."), "success")
            return redirect(url_for("admin.edit_convening", convening_id=convening.id))
    return render_template("admin/convenings/settings.html", form=form, convening=convening,
                           timezones=COMMON_TIMEZONES)


# -- ticket types ----------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/tickets")
@allow(Permission.SETUP_VIEW)
def tickets(convening_id: int):
    """List ticket types with seats held and left."""
    convening = convening_or_404(convening_id)
    return render_template("admin/convenings/tickets.html", convening=convening, usage=seat_usage(convening.id))


@bp.route("/c/<int:convening_id>/tickets/new", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def new_ticket(convening_id: int):
    """Add a ticket type."""
    convening = convening_or_404(convening_id)
    form = TicketTypeForm()
    if form.validate_on_submit():
        try:
            ticket = service.create_ticket_type(convening.id, form.ticket_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("Ticket type %(ticket)s is added.", ticket=ticket.name), "success")
            return redirect(url_for("admin.tickets", convening_id=convening.id))
    return render_template("admin/convenings/ticket_form.html", convening=convening, form=form, ticket=None)


@bp.route("/c/<int:convening_id>/tickets/<int:ticket_id>", methods=["GET", "POST"])
@allow(Permission.SETUP_VIEW, Permission.EDIT)
def edit_ticket(convening_id: int, ticket_id: int):
    """Change a ticket type."""
    convening = convening_or_404(convening_id)
    ticket = child_or_404(TicketType, convening, ticket_id)
    form = _form(TicketTypeForm, lambda: TicketTypeForm.for_ticket(ticket, convening))
    if form.validate_on_submit():
        try:
            service.update_ticket_type(ticket.id, form.ticket_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The ticket type is saved."), "success")
            return redirect(url_for("admin.tickets", convening_id=convening.id))
    return render_template("admin/convenings/ticket_form.html", convening=convening, form=form, ticket=ticket)


@bp.route("/c/<int:convening_id>/tickets/<int:ticket_id>/delete", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def delete_ticket(convening_id: int, ticket_id: int):
    """Say what deleting a ticket type does (or that registrations keep it), then delete it on confirmation."""
    convening = convening_or_404(convening_id)
    ticket = child_or_404(TicketType, convening, ticket_id)
    return confirm_deletion(convening, lambda: service.ticket_type_deletion(ticket.id),
                            lambda token: service.delete_ticket_type(ticket.id, expected=token),
                            back=url_for("admin.edit_ticket", convening_id=convening.id, ticket_id=ticket.id),
                            after=url_for("admin.tickets", convening_id=convening.id))


# -- questions -------------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/questions")
@allow(Permission.SETUP_VIEW)
def questions(convening_id: int):
    """List the registration form's questions in order."""
    convening = convening_or_404(convening_id)
    return render_template("admin/convenings/questions.html", convening=convening, move_form=EmptyForm())


@bp.route("/c/<int:convening_id>/questions/new", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def new_question(convening_id: int):
    """Add a question at the end of the registration form."""
    convening = convening_or_404(convening_id)
    form = QuestionForm()
    if form.validate_on_submit():
        try:
            service.save_question(convening.id, form.question_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The question is added."), "success")
            return redirect(url_for("admin.questions", convening_id=convening.id))
    return render_template("admin/convenings/question_form.html", convening=convening, form=form, question=None)


@bp.route("/c/<int:convening_id>/questions/<int:question_id>", methods=["GET", "POST"])
@allow(Permission.SETUP_VIEW, Permission.EDIT)
def edit_question(convening_id: int, question_id: int):
    """Change a question."""
    convening = convening_or_404(convening_id)
    question = child_or_404(Question, convening, question_id)
    form = _form(QuestionForm, lambda: QuestionForm.for_question(question))
    if form.validate_on_submit():
        try:
            service.save_question(convening.id, form.question_data(), question_id=question.id)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The question is saved."), "success")
            return redirect(url_for("admin.questions", convening_id=convening.id))
    return render_template("admin/convenings/question_form.html", convening=convening, form=form,
                           question=question)


@bp.route("/c/<int:convening_id>/questions/<int:question_id>/delete", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def delete_question(convening_id: int, question_id: int):
    """Say whose answers go with a question, then delete it and them on confirmation."""
    convening = convening_or_404(convening_id)
    question = child_or_404(Question, convening, question_id)
    return confirm_deletion(convening, lambda: service.question_deletion(question.id),
                            lambda token: service.delete_question(question.id, expected=token),
                            back=url_for("admin.edit_question", convening_id=convening.id, question_id=question.id),
                            after=url_for("admin.questions", convening_id=convening.id))


@bp.post("/c/<int:convening_id>/questions/<int:question_id>/move/<any(up, down):direction>")
@allow(Permission.EDIT, Permission.EDIT)
def move_question(convening_id: int, question_id: int, direction: str):
    """Move a question one place up or down."""
    convening = convening_or_404(convening_id)
    question = child_or_404(Question, convening, question_id)
    if EmptyForm().validate_on_submit():
        service.move_question(question.id, direction)
    return redirect(url_for("admin.questions", convening_id=convening.id, _anchor=f"question-{question.id}"))


# -- delegations -----------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/delegations")
@allow(Permission.SETUP_VIEW)
def delegations(convening_id: int):
    """List delegations with their active registrations."""
    convening = convening_or_404(convening_id)
    return render_template("admin/convenings/delegations.html", convening=convening,
                           counts=reports.active_counts_by_delegation(convening.id))


@bp.route("/c/<int:convening_id>/delegations/new", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def new_delegation(convening_id: int):
    """Add a delegation."""
    convening = convening_or_404(convening_id)
    form = DelegationForm()
    if form.validate_on_submit():
        try:
            delegation = service.save_delegation(convening.id, form.delegation_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("Delegation %(delegation)s is added.", delegation=delegation.name), "success")
            return redirect(url_for("admin.delegations", convening_id=convening.id))
    return render_template("admin/convenings/delegation_form.html", convening=convening, form=form, delegation=None)


@bp.route("/c/<int:convening_id>/delegations/<int:delegation_id>", methods=["GET", "POST"])
@allow(Permission.SETUP_VIEW, Permission.EDIT)
def edit_delegation(convening_id: int, delegation_id: int):
    """Change a delegation."""
    convening = convening_or_404(convening_id)
    delegation = child_or_404(Delegation, convening, delegation_id)
    form = _form(DelegationForm, lambda: DelegationForm.for_delegation(delegation))
    if form.validate_on_submit():
        try:
            service.save_delegation(convening.id, form.delegation_data(), delegation_id=delegation.id)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The delegation is saved."), "success")
            return redirect(url_for("admin.delegations", convening_id=convening.id))
    return render_template("admin/convenings/delegation_form.html", convening=convening, form=form,
                           delegation=delegation)


@bp.route("/c/<int:convening_id>/delegations/<int:delegation_id>/delete", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def delete_delegation(convening_id: int, delegation_id: int):
    """Say who would be left without a delegation, then delete it on confirmation (its people stay registered)."""
    convening = convening_or_404(convening_id)
    delegation = child_or_404(Delegation, convening, delegation_id)
    return confirm_deletion(convening, lambda: service.delegation_deletion(delegation.id),
                            lambda token: service.delete_delegation(delegation.id, expected=token),
                            back=url_for("admin.edit_delegation", convening_id=convening.id,
                                         delegation_id=delegation.id),
                            after=url_for("admin.delegations", convening_id=convening.id))


@bp.route("/c/<int:convening_id>/delegations/<int:delegation_id>/merge", methods=["GET", "POST"])
@allow(Permission.EDIT, Permission.EDIT)
def merge_delegation(convening_id: int, delegation_id: int):
    """Merge a delegation into another: choose it, see what moves, confirm."""
    convening = convening_or_404(convening_id)
    delegation = child_or_404(Delegation, convening, delegation_id)
    others = [d for d in convening.delegations if d.id != delegation.id]
    into_id = request.values.get("into", type=int)
    into = next((d for d in others if d.id == into_id), None)
    form = EmptyForm()
    if request.method == "POST" and into is not None and form.validate_on_submit():
        name = delegation.name
        try:
            merges.merge_delegations(delegation.id, into.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("Delegation %(name)s is merged into %(into)s.", name=name, into=into.name), "success")
            return redirect(url_for("admin.delegations", convening_id=convening.id))
    return render_template("admin/convenings/delegation_merge.html", convening=convening, delegation=delegation,
                           others=others, into=into, form=form,
                           moving=merges.delegation_references(delegation.id) if into else {})
