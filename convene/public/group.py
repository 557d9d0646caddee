"""Delegation registration: a lead registers several delegates in one form and pays once for all."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from wtforms.fields.choices import SelectChoice

from convene import throttle
from convene.errors import ConveneError, session_lost
from convene.forms import choice_list
from convene.models import OrderStatus, utcnow
from convene.public import bp
from convene.public.forms import MAX_DELEGATES, GroupForm
from convene.public.routes import (
    checkout_redirect,
    published_convening,
    show_code_problem,
    ticket_label,
    ticket_rows,
    typed_discount,
)
from convene.services import payments
from convene.services import registrations as service
from convene.text import search_key


def _group_form(convening, rows) -> GroupForm:
    form = GroupForm()
    form.take_code_from_link()
    seatable = [r for r in rows if r["state"] == "available"]
    # A paid ticket that cannot be paid for here stays in the menu, disabled and saying why (as on the single form).
    choices = choice_list([(0, gettext("Choose a ticket"))] + [(r["ticket"].id, ticket_label(r, convening.currency))
                                                      for r in seatable])
    choices += [SelectChoice(r["ticket"].id, ticket_label(r, convening.currency) + " " + gettext(
                             "(not bookable: online payment is not set up)"), {"disabled": True})
                for r in rows if r["state"] == "payment_not_set_up"]
    form.offer_delegations(sorted(convening.delegations, key=lambda d: search_key(d.name)),
                           service.new_delegations_allowed(convening))
    if request.method == "POST" and form.add_row.data and len(form.delegates.entries) < MAX_DELEGATES:
        form.delegates.append_entry()
    for entry in form.delegates:
        entry.form.ticket_type_id.choices = choices
        if len(seatable) == 1 and not entry.form.ticket_type_id.data:
            entry.form.ticket_type_id.data = seatable[0]["ticket"].id
    return form, seatable


@bp.route("/c/<slug>/register/group", methods=["GET", "POST"])
@throttle.registration_posts
def register_group(slug: str):
    """The delegation form: lead details, one row per delegate, one payment."""
    convening = published_convening(slug)
    now = utcnow()
    service.expire_offers(convening.id, now=now)
    state = convening.registration_state(now)
    discount, code_problem = typed_discount(convening, now)
    rows = ticket_rows(convening, service.seat_usage(convening.id), now, discount)
    form, seatable = _group_form(convening, rows)
    # "Add another delegate" and "Apply" (the code) only redraw the form with what was typed.
    adding = request.method == "POST" and (form.add_row.data or bool(request.form.get("apply_code")))
    if state == "open" and seatable and not adding and request.method == "POST" and not session_lost():
        valid = form.validate_on_submit() and not code_problem
        kept = [(index, entry.form) for index, entry in enumerate(form.delegates) if not entry.form.is_blank()]
        rows_ok = all([row.check_filled() for _, row in kept])  # a list, so every row gets its messages
        delegation_name = form.chosen_delegation()
        if delegation_name is None:
            pass  # the message is beside the delegation field
        elif valid and not kept:
            flash(gettext("Add at least one delegate."), "error")
        elif valid and rows_ok:
            delegates = [{"given_name": row.given_name.data, "family_name": row.family_name.data,
                          "email": row.email.data, "organization": form.organization.data,
                          "ticket_type_id": row.ticket_type_id.data} for _, row in kept]
            try:
                order = service.register_delegation(
                    convening.id,
                    {"name": form.lead_name.data, "email": form.lead_email.data, "organization": form.organization.data},
                    delegation_name, delegates,
                    code=form.code.data, payment=form.payment_data(),
                )
            except ConveneError as error:
                _show_group_error(form, kept, error)
            else:
                order_page = url_for("payments.order_page", slug=slug, token=payments.order_token(order))
                if order.status == OrderStatus.PENDING:
                    return checkout_redirect(order, order_page)
                flash(gettext("Your delegation is registered. Everyone gets their own confirmation by email."), "success")
                return redirect(order_page)
    show_code_problem(form, code_problem)
    return render_template(
        "public/register_group.html", convening=convening, form=form, state=state, seatable=seatable, rows=rows,
        discount=discount, pay=payments.payment_options(convening),
        any_paid=any(r["price"].due_cents for r in seatable), max_delegates=MAX_DELEGATES,
    )


def _show_group_error(form: GroupForm, kept, error: ConveneError) -> None:
    """Put a refusal beside the field it is about: a delegate's row, the code, or the payment choice."""
    if error.field and error.field.startswith("row-"):
        index = int(error.field.split("-", 1)[1])
        row = kept[index][1] if index < len(kept) else None
        if row is not None:
            target = row.email if error.code in ("already_registered", "already_pending") else row.ticket_type_id
            target.errors = [*target.errors, error.message.split(": ", 1)[-1]]
            flash(error.message, "error")
            return
    if error.code == "group_email_repeated":
        for _, row in kept:
            if (row.email.data or "").strip().lower() == error.details.get("email"):
                row.email.errors = [*row.email.errors, gettext("This email is listed twice.")]
    target = getattr(form, error.field, None) if error.field and not error.field.startswith("row-") else None
    if target is not None and error.field != "ticket_type_id":
        target.errors = [*target.errors, error.message]
    else:
        flash(error.message, "error")
