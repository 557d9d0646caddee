"""Paying: the order page (Stripe Checkout, its return, receipts and invoices) and the Stripe webhook."""
from flask import Blueprint

bp = Blueprint("payments", __name__)

from convene.payments import routes  # noqa: E402,F401
