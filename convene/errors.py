"""ConveneError family, the one table of user-facing messages, and the app's error pages."""
from __future__ import annotations

import math
import time

import sqlalchemy.exc as sa_exc
from flask import Flask, Response, flash, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import SecurityError

from convene.i18n_marks import N_

MESSAGES = {
    "convening_not_found": N_("That convening does not exist."),
    "registration_closed": N_("Registration for this convening is closed."),
    "registration_not_open": N_("Registration for this convening has not opened yet."),
    "ticket_unavailable": N_("That ticket type is not available."),
    "ticket_not_on_sale": N_("That ticket type is not on sale right now."),
    "payment_not_set_up": N_("Online payment is not set up for this convening yet, so paid tickets cannot be "
    "booked here. Please contact the organizers."),
    "already_registered": N_("This email address is already registered for this convening."),
    "sold_out": N_("Sorry, the last seats were just taken."),
    "sold_out_no_waitlist": N_("Sorry, this convening is full and has no waitlist."),
    "not_cancellable": N_("This registration is already cancelled."),
    "offer_expired": N_("This seat offer has expired and was passed to the next person on the waitlist."),
    "offer_not_active": N_("This seat offer is no longer open."),
    "link_invalid": N_("This link is not valid. Ask for a new one below."),
    "link_expired": N_("This link has expired. Ask for a new one below."),
    "comp_over_capacity": N_("There are not enough seats left for this ticket type."),
    "ticket_has_registrations": N_("This ticket type has registrations and cannot be deleted; hide it instead."),
    "slug_taken": N_("Another convening already uses that web address."),
    "user_exists": N_("An account with that email already exists."),
    "user_not_found": N_("No account has that email."),
    "weak_password": N_("Passwords need at least 8 characters."),
    "current_password_wrong": N_("That is not your current password."),
    "import_invalid": N_("Nothing was imported: fix the rows listed below and upload the file again."),
    "import_over_capacity": N_("Nothing was imported: the file has more people than the seats left."),
    "status_change_not_allowed": N_("That change of status is not allowed."),
    "demo_in_production": N_("The demo creates accounts with a published password, so it never runs with the "
    "production configuration (CONVENE_ENV=production)."),
    # Setting up convenings, tickets, questions and delegations.
    "language_unknown": N_("Choose languages from the list."),
    "default_language_unknown": N_("Choose the default language from the list."),
    "interpretation_language_unknown": N_("Choose interpretation languages from the list."),
    "translation_language_not_enabled": N_("That language is not enabled for this convening; enable it in the settings first."),
    "translation_too_long": N_("This translation is {length} characters long; at most {limit} fit."),
    "translation_choices_count": N_("Give one translated choice per line, {count} lines in all (a blank line shows the default choice)."),
    "translation_item_gone": N_("This item was deleted in the meantime; nothing was saved for it."),
    "session_interpretation_unknown": N_("Choose interpretation languages this convening offers."),
    "name_required": N_("Enter a name."),
    "label_required": N_("Enter the question."),
    "dates_missing": N_("Enter the first and last day."),
    "local_time_missing": N_("{when} does not exist in {zone}: the clocks move forward then. "
    "Choose a time outside the change."),
    "capacity_invalid": N_("Enter a whole number of seats."),
    "slug_invalid": N_("Use only lowercase letters, digits and hyphens, for example summit-2025."),
    "timezone_invalid": N_("Enter a time zone from the IANA list, for example America/Toronto or Europe/Berlin."),
    "dates_out_of_order": N_("The last day cannot be before the first day."),
    "window_out_of_order": N_("Registration must close after it opens."),
    "currency_invalid": N_("Enter a three-letter currency code, for example CAD or EUR."),
    "capacity_negative": N_("Capacity cannot be negative; leave it empty for no limit."),
    "reference_prefix_invalid": N_("Use 2 to 5 capital letters or digits, for example TOR or SUM25."),
    "price_invalid": N_("Enter a price as a number, for example 150 or 149.99."),
    "price_negative": N_("The price cannot be negative; use 0 for a free ticket."),
    "price_too_precise": N_("Use at most two decimals, for example 149.99."),
    "price_too_large": N_("That price is too large."),
    "sales_out_of_order": N_("Sales must end after they start."),
    "question_kind_invalid": N_("Choose what kind of answer the question takes."),
    "choices_needed": N_("List at least two choices, one per line."),
    "choices_duplicate": N_("Each choice must be different: “{choice}” is listed twice."),
    "question_kind_locked": N_("People have already answered this question, so its kind cannot change; "
    "add a new question instead."),
    "delegation_exists": N_("A delegation with that name already exists."),
    "bad_direction": N_("A question moves up or down."),
    "ticket_not_found": N_("That ticket type does not exist."),
    "question_not_found": N_("That question does not exist."),
    "delegation_not_found": N_("That delegation does not exist."),
    "delegation_unknown": N_("Choose your delegation from the list; ask the organizers if yours is missing."),
    "delegation_choose": N_("Choose your delegation."),
    "delegation_choose_one": N_("Either choose a delegation from the list or type a new one, not both."),
    "delegation_merge_self": N_("Choose another delegation to merge into."),
    "registration_merge_self": N_("Choose another registration to merge with."),
    "registration_merge_other_convening": N_("Both registrations must be for the same convening."),
    "registration_merge_cancelled": N_("Both registrations must still be active (not cancelled)."),
    "registration_merge_both_paid": N_("Both registrations have paid orders. Refund one of them first, then merge."),
    "registration_merge_keep_paid": N_("The other registration is the paid one: keep it and merge this one into it."),
    "registration_merge_pending": N_("The other registration has a payment in progress: let it finish or release it first."),
    "registration_not_found": N_("That registration does not exist."),
    # Site visits.
    "visit_preferences_closed": N_("Site-visit preferences are not open."),
    "delete_preview_changed": N_("Nothing was deleted: who is signed up changed since you looked. Here is what "
    "deleting would do now; check it and confirm again."),
    "delete_reason_required": N_("The program is published, so say why the session is cancelled: the people "
    "signed up are emailed this reason."),
    "publish_preview_changed": N_("Nothing was published: the plan changed since you looked. Here is what publishing "
    "would do now; check it and confirm again."),
    "unknown_host": N_("That host organization is not part of this convening."),
    "duplicate_host_rank": N_("Each host can be ranked only once."),
    "no_visits": N_("Add site visits (a host in a slot, with a capacity) first."),
    "no_visitors": N_("Nobody is confirmed to go on site visits yet."),
    "bad_move": N_("That person or slot is not part of this convening."),
    "bad_move_slot": N_("That visit is not in this slot."),
    "visit_inaccessible": N_("{name} needs step-free access and {host} does not have it."),
    "visit_full": N_("{host} is full in {slot} ({capacity} places)."),
    "visit_repeat": N_("{name} already visits {host} in another slot."),
    "not_a_visitor": N_("{name} is not a confirmed visitor (cancelled, waitlisted, or staff and hosts), so has no visits."),
    "host_exists": N_("Another host organization of this convening already has that name."),
    "host_not_found": N_("That host organization does not exist."),
    "slot_not_found": N_("That visit slot does not exist."),
    "visit_not_found": N_("That site visit does not exist."),
    "slot_label_required": N_("Enter a label, for example “Tuesday morning”."),
    "time_required": N_("Enter a date and time."),
    "slot_out_of_order": N_("The slot must end after it starts."),
    "slot_outside_convening": N_("A slot must fall on the convening's dates ({first} to {last}) or a day either side."),
    "slot_overlaps": N_("This slot overlaps “{other}”; a person cannot be at two visits at once."),
    "capacity_required": N_("Enter how many people the visit takes."),
    "visit_capacity_negative": N_("Capacity cannot be negative; leave the cell empty for no visit."),
    "visit_capacity_too_large": N_("That capacity is too large."),
    "departure_outside_slot": N_("The departure must be before the slot ends and at most 12 hours before it starts."),
    "visits_per_person_invalid": N_("Enter a number of visits from 1 to 10."),
    "visits_per_person_over_slots": N_("There are only {slots} slots, so each person can make at most {slots} visits."),
    "bad_grid": N_("The grid does not match this convening's hosts and slots any more; reload the page."),
    # The program: sessions, rooms, presenters, sign-ups.
    "title_required": N_("Enter a title."),
    "kind_invalid": N_("Choose what kind of session this is."),
    "times_required": N_("Enter when the session starts and ends."),
    "ends_before_start": N_("The session must end after it starts."),
    "too_long": N_("A session cannot last more than 24 hours; check the dates."),
    "capacity_too_large": N_("Enter at most 100,000."),
    "room_unknown": N_("Choose one of this convening's rooms."),
    "block_unknown": N_("Choose one of this convening's allocation blocks."),
    "slot_unknown": N_("Choose one of this convening's site-visit slots."),
    "presenter_unknown": N_("Choose presenters of this convening."),
    "room_exists": N_("A room with that name already exists."),
    "block_exists": N_("A block with that name already exists."),
    "room_in_use": N_("Sessions are scheduled in this room; move or delete them first."),
    "registration_unknown": N_("Choose a person registered for this convening."),
    "already_presenter": N_("That person is already listed as a presenter."),
    "session_not_found": N_("That session does not exist."),
    "room_not_found": N_("That room does not exist."),
    "presenter_not_found": N_("That presenter does not exist."),
    "block_not_found": N_("That block does not exist."),
    "rule_invalid": N_("Choose blocking or warning for each kind of conflict."),
    "program_not_published": N_("The program is not published yet."),
    "publish_warnings_changed": N_("Nothing was published: the open warnings changed since you looked. Here they "
    "are now; check them and confirm again."),
    "publish_blocked": N_("The program has blocking conflicts; resolve them before publishing."),
    "signup_not_needed": N_("This session needs no sign-up: everyone is welcome."),
    "signup_not_confirmed": N_("Only confirmed registrations can sign up for sessions."),
    "signup_by_ranking": N_("Places in this session are allocated from everyone's ranking: rank the sessions on your page instead."),
    "already_signed_up": N_("You are already signed up for this session."),
    "not_signed_up": N_("You are not signed up for this session."),
    "session_full": N_("Sorry, this session is full."),
    "session_over": N_("This session is over."),
    "preferences_closed": N_("Ranking for these sessions is closed."),
    "duplicate_rank": N_("Each session can be ranked only once."),
    "session_not_in_block": N_("That session is not part of this block."),
    "block_empty": N_("Add sessions to this block before allocating places."),
    "nobody_to_allocate": N_("Nobody has ranked these sessions (or signed up for them) yet."),
    "allocation_preview_changed": N_("Nobody was placed: the rankings, sign-ups or registrations changed since you "
    "looked. Here is what allocating would do now; check it and confirm again."),
    "ranking_audience_changed": N_("Ranking was not opened: who would be emailed changed since you looked. Here is "
    "the list now; check it and confirm again."),
    "delete_changed": N_("Nothing was deleted: what it affects changed since you looked. Here is what deleting "
    "would do now; check it and confirm again."),
    "cancel_changed": N_("Nothing was cancelled: the order or its seats changed since you looked. Here is what "
    "cancelling would do now; check it and confirm again."),
    # Payments, codes, delegations, invoices and refunds.
    "already_pending": N_("{email} already has a seat waiting for payment. Check your email for the payment link, "
    "or ask for it again below."),
    "code_invalid": N_("That code is not valid for this convening. Check the spelling."),
    "code_not_yet_valid": N_("That code cannot be used yet."),
    "code_expired": N_("That code has expired."),
    "code_used_up": N_("That code has been used as many times as it allows."),
    "code_not_enough_uses": N_("That code has only {left} use(s) left."),
    "code_not_for_ticket": N_("That code does not apply to the ticket type you chose."),
    "invoice_not_offered": N_("Paying by invoice is not offered for this convening."),
    "card_not_set_up_use_invoice": N_("Card payment is not set up for this convening; choose to pay by invoice."),
    "group_empty": N_("Add at least one delegate."),
    "group_email_repeated": N_("{email} is listed twice; each delegate needs their own email address."),
    "group_too_big": N_("Not enough seats for the whole delegation: {left} left for {ticket}."),
    "order_not_payable": N_("This order is not waiting for a payment."),
    "order_already_paid": N_("This order was paid after all; your registration is confirmed."),
    "order_not_found": N_("That order does not exist."),
    "payment_provider_refused": N_("The payment provider refused the request: {reason}"),
    "payment_provider_unavailable": N_("The payment provider could not be reached. Your seat is still held; "
    "please try again in a moment."),
    "webhook_not_configured": N_("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET is not set)."),
    "webhook_signature_invalid": N_("The Stripe signature is missing, wrong or too old."),
    "webhook_payload_invalid": N_("The webhook body is not a Stripe event."),
    "webhook_timestamp_future": N_("The Stripe signature is dated more than five minutes in the future; check the "
    "server's clock."),
    "refund_amount_invalid": N_("Enter an amount to refund greater than zero."),
    "refund_too_large": N_("At most {left} can still be refunded on this order."),
    "refund_not_pending": N_("That refund is not waiting to be sent."),
    "invoice_not_outstanding": N_("This order has no outstanding invoice."),
    "order_not_in_review": N_("This order is not waiting for review."),
    "seats_taken_refund": N_("The seats this payment was for are taken; refund the payment instead."),
    "refund_retry_too_large": N_("This refund can no longer be sent: what is left to refund is less. Stripe may "
    "have made it after all; check the payment in the Stripe dashboard."),
    "pending_group_seat": N_("This seat is part of a delegation's payment in progress. The delegation lead can "
    "release the whole order from the delegation's page."),
    "order_not_cancellable": N_("Only unpaid orders can be cancelled; refund a paid order instead."),
    "code_exists": N_("Another code of this convening is already spelled that way."),
    "code_text_invalid": N_("Use 3 to 40 letters, digits, hyphens or underscores."),
    "percent_invalid": N_("Enter a percentage from 1 to 100."),
    "amount_invalid": N_("Enter an amount greater than zero, for example 25 or 49.99."),
    "settlement_invalid": N_("Choose how this seat is settled: invoice, paid elsewhere or complimentary."),
    "settlement_note_required": N_("Say how it was paid, for example “Cheque 1042 received”."),
    "desk_method_invalid": N_("Choose how it was paid: cash, card terminal, cheque or bank transfer."),
    "desk_nothing_outstanding": N_("Nothing is outstanding on this order, so no payment can be recorded."),
    "desk_amount_over_balance": N_("That is more than the {balance} still owed; enter at most the balance."),
    "max_uses_invalid": N_("Enter a whole number of uses of at least 1, or leave it empty for no limit."),
    "code_window_out_of_order": N_("The code must stop being valid after it starts."),
    "access_needs_tickets": N_("An access code must name at least one ticket type it unlocks."),
    "no_receipt": N_("There is no receipt for this order: nothing has been paid yet."),
    "no_invoice": N_("This order was not invoiced."),
    "early_price_invalid": N_("The early-bird price must be lower than the regular price."),
    "early_until_missing": N_("Give the date the early-bird price ends."),
    "invoice_due_days_invalid": N_("Enter a number of days from 0 to 365."),
    # The back office's payments and codes pages.
    "code_kind_invalid": N_("Choose what the code does: a percentage off, an amount off each ticket, or access only."),
    "code_ticket_unknown": N_("Choose ticket types of this convening."),
    "code_not_found": N_("That code does not exist."),
    "amount_too_large": N_("That amount is too large."),
    # Email addresses (convene/emails.py).
    "email_invalid": N_("Enter an email address like name@example.org."),
    "email_not_sendable": N_("This address has characters before the @ that mail servers may not deliver; "
    "use another address."),
    # Credit notes for cancelled invoices.
    "no_credit_note": N_("That credit note does not exist."),
    # A form sent after its session (and so its CSRF token) was lost, e.g. after a long pause.
    "session_lost": N_("Your session timed out, so nothing was saved yet. Check your details and send the form again."),
    "session_lost_reload": N_("Your session timed out, so nothing was saved. Go back, reload the page and try again."),
    # The CSV import's columns step, and rankings organizers enter (issue 11: 15).
    "import_columns_unread": N_("Nothing was imported yet: some columns match nothing this convening asks. Choose "
    "below what each one feeds (or ignore it), then import."),
    "import_checked": N_("Every row is checked and nothing is wrong: import it when the columns read as they should."),
    "import_upload_gone": N_("The uploaded file is no longer kept (files wait two hours at most); upload it again."),
    "import_changed": N_("Nothing was imported: the questions or site-visit hosts changed while the file was being "
    "checked. Import it again."),
    "too_many_host_ranks": N_("Rank at most {limit} hosts."),
    "ranking_registration_ended": N_("{name}'s registration has ended, so there is no ranking to change."),
    # Privacy: the notice, retention and erasing a past convening's personal data.
    "privacy_notice_too_long": N_("Keep the notice under {limit} characters."),
    "retention_invalid": N_("Enter a number of months from 1 to 120, or leave it empty to keep personal data until "
    "you erase it."),
    "erase_not_ended": N_("Personal data can be erased once the convening is over, after its last day ({last_day})."),
    "erase_preview_changed": N_("Nothing was erased: what would be erased changed since you looked. Here is what "
    "erasing would do now; check it and confirm again."),
    "erase_confirm_mismatch": N_("Type the convening's web address, {slug}, exactly as shown."),
    "personal_data_erased": N_("The personal data of {name} was erased on {day}, as its privacy notice says, so "
    "this link opens nothing any more."),
    # Copying a convening for a new edition.
    "edition_starts_on_invalid": N_("Enter a first day between {first} and {last}."),
    # Teams: invitations, roles, removing members (issue 12); resetting a forgotten password.
    "team_role_invalid": N_("Choose one of the roles listed."),
    "already_member": N_("{email} is already on this convening's team ({role}), so no invitation was sent. Change "
    "their role below instead."),
    "already_member_you": N_("You are already on this convening's team ({role}), so nothing changed. To accept this "
    "invitation with another account, sign out and open the link again."),
    "member_not_found": N_("That person is not on this convening's team."),
    "invitation_not_found": N_("That invitation does not exist."),
    # Check-in lists, the desk's walk-ins and badge fixes
    "checkin_list_name_required": N_("Enter a name for the list, like “Networking dinner”."),
    "checkin_list_name_too_long": N_("Keep the name to {max} characters."),
    "checkin_list_ticket_unknown": N_("Choose ticket types of this convening."),
    "checkin_list_role_unknown": N_("Choose roles from the list."),
    "checkin_list_has_checkins": N_("People are checked in on this list: confirm that their check-ins go with it."),
    "checkin_list_main_unchanged": N_("The entrance list takes every confirmed registration and stays as it is; add a "
    "list of your own to let in only some people."),
    "walk_in_settlement_invalid": N_("Choose how they pay: paid here at the desk, or by invoice."),
    "walk_in_invoice_not_allowed": N_("Only organizers may send an invoice; take the payment at the desk, or ask an "
    "organizer."),
    "walk_in_already_registered": N_("{name} is already registered with this email ({reference}): check them in "
    "instead."),
    "walk_in_not_on_list": N_("People with this ticket are not on the list “{list}”: choose another ticket, or check "
    "them in on another list."),
    "invitation_not_open": N_("That invitation is no longer open: it was accepted, withdrawn or has expired."),
    "invitation_invalid": N_("This invitation link is not valid. Check that the whole link from the email was "
    "copied, or ask the person who invited you to send a new invitation."),
    "invitation_used": N_("This invitation was already accepted, so it cannot be used again. Sign in to reach the "
    "convening."),
    "invitation_revoked": N_("This invitation was withdrawn or replaced by a newer one. Use the link in the most "
    "recent invitation email, or ask the person who invited you to send a new one."),
    "invitation_expired": N_("This invitation has expired. Ask the person who invited you to send a new one."),
    "invitation_sign_in": N_("An account with {email} already exists: sign in with it to accept the invitation."),
    "last_owner_demoted": N_("This is the convening's only owner, so their role cannot change. Make someone else "
    "an owner first."),
    "last_owner_removed": N_("This is the convening's only owner, so they cannot be removed. Make someone else an "
    "owner first."),
    "reset_link_invalid": N_("This password reset link is not valid. Check that the whole link from the email was "
    "copied, or ask for a new one."),
    "reset_link_expired": N_("This password reset link has expired. Ask for a new one."),
    "reset_link_used": N_("This password reset link was already used, or the password changed since it was sent. "
    "Ask for a new one if you still need it."),
    # Check-in: scanning badges and the lists people are checked in on.
    "checkin_code_required": N_("Scan a badge, or type a reference or a name."),
    "checkin_list_not_found": N_("That check-in list does not exist."),
    "checkin_not_found": N_("That check-in does not exist."),
    "checkin_already_reverted": N_("This check-in was already undone."),
    "checkin_list_name_taken": N_("Another check-in list of this convening already has that name."),
    "checkin_list_kind_invalid": N_("Choose what the list is for: a session, a site visit or a gathering."),
    "checkin_list_session_required": N_("Choose one of this convening's sessions."),
    "checkin_list_visit_required": N_("Choose one of this convening's site visits."),
    "checkin_list_main_fixed": N_("The entrance list is made with the convening and cannot be deleted."),
}


def message_for(code: str, **details) -> str:
    """The message for `code` in the language of the page or email being made, with its details filled in."""
    from flask_babel import gettext

    text = MESSAGES.get(code)
    return gettext(text).format(**details) if text else code


class LazyMessage:
    """A message looked up when shown, for validators and choices made once when a module is imported."""

    def __init__(self, code: str, **details):
        self.code, self.details = code, details

    def __str__(self) -> str:
        return message_for(self.code, **self.details)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))

    def format(self, **details) -> str:
        return message_for(self.code, **{**self.details, **details})


# Forms that are shown again with what was sent when their session was lost; every other POST gets a plain 400.
RESHOWN_AFTER_LOST_SESSION = frozenset({"public.register", "public.register_group", "public.manage"})


def session_lost() -> bool:
    """True while a form is shown again after a lost session: the view must show what was sent, never save it."""
    return bool(g.get("session_lost"))


class ConveneError(Exception):
    """A business rule refused an action; `message` is safe to show the user."""

    status_code = 400

    def __init__(
        self, code: str, message: str | None = None, *, field: str | None = None, status_code: int | None = None,
        **details,
    ):
        self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.message = message or message_for(code, **details)
        self.field = field
        self.details = details
        super().__init__(self.message)


def retry_after_seconds(error) -> int:
    """Seconds until a refused request may be tried again: the error's own `retry_after`, else the limit's reset."""
    seconds = getattr(error, "retry_after", None)
    if seconds is None:
        from convene.extensions import limiter

        current = limiter.current_limit
        seconds = current.reset_at - time.time() if current is not None else 60
    return max(1, math.ceil(seconds))


def _wait_text(seconds: int) -> str:
    from flask_babel import ngettext

    if seconds < 90:
        return ngettext("%(num)d second", "%(num)d seconds", seconds)
    return ngettext("%(num)d minute", "%(num)d minutes", math.ceil(seconds / 60))


class NotFound(ConveneError):
    status_code = 404


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/stripe/", "/webhooks/", "/healthz"))


def register_errorhandlers(app: Flask) -> None:
    """Render 400/403/404/405/500 as pages, or JSON under /api and the webhook."""

    from flask_babel import gettext as _

    def render(status: int, title: str, message: str):
        if _wants_json():
            return jsonify(error=title, message=message), status
        return render_template("errors/error.html", status=status, title=title, message=message), status

    @app.errorhandler(SecurityError)
    def untrusted_host(error):
        # No URL can be built for a host the app does not serve, so the page stands alone.
        app.logger.warning("refused request for an untrusted host: %s", error.description)
        return Response("Bad request: this server does not answer to that host name.\n", 400,
                        mimetype="text/plain")

    @app.errorhandler(400)
    def bad_request(error):
        return render(400, _("Bad request"),
                      getattr(error, "description", "") or _("The request could not be understood."))

    @app.errorhandler(CSRFError)
    def lost_session(error):
        # CSRFProtect refuses before the view runs. For the long public forms the view runs again, in show-only
        # mode, so what was typed comes back with a fresh token; nothing is saved, so every POST stays protected.
        view = app.view_functions.get(request.endpoint) if request.endpoint in RESHOWN_AFTER_LOST_SESSION else None
        if view is None or _wants_json():
            return render(400, _("Session expired"), message_for("session_lost_reload"))
        g.session_lost = True
        flash(message_for("session_lost"), "warning")
        try:
            response = make_response(app.ensure_sync(view)(**(request.view_args or {})))
        except Exception as raised:  # noqa: BLE001 - a 404 or 429 from the view is answered as it would be; others re-raise
            return app.handle_user_exception(raised)
        if response.status_code < 300:
            response.status_code = 400
        return response

    @app.errorhandler(403)
    def forbidden(error):
        return render(403, _("Not allowed"), _("Your account cannot open this page."))

    @app.errorhandler(404)
    def not_found(error):
        return render(404, _("Page not found"), _("There is nothing at this address."))

    @app.errorhandler(405)
    def method_not_allowed(error):
        return render(405, _("Method not allowed"), _("This address does not accept that kind of request."))

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit:
            text = _("What was sent is larger than this address accepts (%(size)s MB at most).",
                     size=limit // 1_000_000)
        else:
            text = _("What was sent is larger than this address accepts.")
        return render(413, _("Too large"), text)

    @app.errorhandler(429)
    def too_many_requests(error):
        seconds = retry_after_seconds(error)
        response = make_response(render(429, _("Too many attempts"),
                                        _("Too many attempts from here. Please try again in %(wait)s.",
                                          wait=_wait_text(seconds))))
        response.headers["Retry-After"] = str(seconds)
        return response

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    @app.errorhandler(sa_exc.TimeoutError)
    def database_unavailable(error):
        # A refused, hung or timed-out database is the service's trouble, not the request's: 503, not 500.
        from convene.extensions import db

        app.logger.error("database unavailable on %s %s: %s", request.method, request.path, error)
        try:
            db.session.rollback()
        except Exception:  # the connection may be gone; the session is discarded at teardown anyway
            pass
        response = make_response(render(503, _("Temporarily unavailable"),
                                        _("The service cannot reach its database right now. Nothing was changed by "
                                          "this request; please try again in a minute.")))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(ConveneError)
    def convene_error(error: ConveneError):
        return render(error.status_code, _("Cannot do that"), error.message)

    @app.errorhandler(500)
    def server_error(error):
        return render(500, _("Something went wrong"), _("The error was logged. Please try again in a moment."))
