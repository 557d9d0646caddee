"""ConveneError family, the one table of user-facing messages, and the app's error pages."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request

MESSAGES = {
    "convening_not_found": "That convening does not exist.",
    "registration_closed": "Registration for this convening is closed.",
    "registration_not_open": "Registration for this convening has not opened yet.",
    "ticket_unavailable": "That ticket type is not available.",
    "ticket_not_on_sale": "That ticket type is not on sale right now.",
    "payment_not_set_up": "Online payment is not set up for this convening yet, so paid tickets cannot be "
    "booked here. Please contact the organizers.",
    "already_registered": "This email address is already registered for this convening.",
    "sold_out": "Sorry, the last seats were just taken.",
    "sold_out_no_waitlist": "Sorry, this convening is full and has no waitlist.",
    "not_cancellable": "This registration is already cancelled.",
    "offer_expired": "This seat offer has expired and was passed to the next person on the waitlist.",
    "offer_not_active": "This seat offer is no longer open.",
    "link_invalid": "This link is not valid. Ask for a new one below.",
    "link_expired": "This link has expired. Ask for a new one below.",
    "comp_over_capacity": "There are not enough seats left for this ticket type.",
    "ticket_has_registrations": "This ticket type has registrations and cannot be deleted; hide it instead.",
    "slug_taken": "Another convening already uses that web address.",
    "user_exists": "An account with that email already exists.",
    "import_invalid": "Nothing was imported: fix the rows listed below and upload the file again.",
    "import_over_capacity": "Nothing was imported: the file has more people than the seats left.",
    "status_change_not_allowed": "That change of status is not allowed.",
    # Setting up convenings, tickets, questions and delegations.
    "name_required": "Enter a name.",
    "label_required": "Enter the question.",
    "dates_missing": "Enter the first and last day.",
    "local_time_missing": "{when} does not exist in {zone}: the clocks move forward then. "
    "Choose a time outside the change.",
    "capacity_invalid": "Enter a whole number of seats.",
    "slug_invalid": "Use only lowercase letters, digits and hyphens, for example summit-2025.",
    "timezone_invalid": "Enter a time zone from the IANA list, for example America/Toronto or Europe/Berlin.",
    "dates_out_of_order": "The last day cannot be before the first day.",
    "window_out_of_order": "Registration must close after it opens.",
    "currency_invalid": "Enter a three-letter currency code, for example CAD or EUR.",
    "capacity_negative": "Capacity cannot be negative; leave it empty for no limit.",
    "reference_prefix_invalid": "Use 2 to 5 capital letters or digits, for example TOR or SUM25.",
    "price_invalid": "Enter a price as a number, for example 150 or 149.99.",
    "price_negative": "The price cannot be negative; use 0 for a free ticket.",
    "price_too_precise": "Use at most two decimals, for example 149.99.",
    "price_too_large": "That price is too large.",
    "sales_out_of_order": "Sales must end after they start.",
    "question_kind_invalid": "Choose what kind of answer the question takes.",
    "choices_needed": "List at least two choices, one per line.",
    "choices_duplicate": "Each choice must be different: “{choice}” is listed twice.",
    "question_kind_locked": "People have already answered this question, so its kind cannot change; "
    "add a new question instead.",
    "delegation_exists": "A delegation with that name already exists.",
    "bad_direction": "A question moves up or down.",
    "ticket_not_found": "That ticket type does not exist.",
    "question_not_found": "That question does not exist.",
    "delegation_not_found": "That delegation does not exist.",
}


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
        self.message = message or MESSAGES.get(code, code).format(**details)
        self.field = field
        self.details = details
        super().__init__(self.message)


class NotFound(ConveneError):
    status_code = 404


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/stripe/", "/healthz"))


def register_errorhandlers(app: Flask) -> None:
    """Render 400/403/404/405/500 as pages, or JSON under /api and the webhook."""

    def render(status: int, title: str, message: str):
        if _wants_json():
            return jsonify(error=title, message=message), status
        return render_template("errors/error.html", status=status, title=title, message=message), status

    @app.errorhandler(400)
    def bad_request(error):
        return render(400, "Bad request", getattr(error, "description", "") or "The request could not be understood.")

    @app.errorhandler(403)
    def forbidden(error):
        return render(403, "Not allowed", "Your account cannot open this page.")

    @app.errorhandler(404)
    def not_found(error):
        return render(404, "Page not found", "There is nothing at this address.")

    @app.errorhandler(405)
    def method_not_allowed(error):
        return render(405, "Method not allowed", "This address does not accept that kind of request.")

    @app.errorhandler(ConveneError)
    def convene_error(error: ConveneError):
        return render(error.status_code, "Cannot do that", error.message)

    @app.errorhandler(500)
    def server_error(error):
        return render(500, "Something went wrong", "The error was logged. Please try again in a moment.")
