"""Public area: convening pages, registration and attendee self-service."""
from flask import Blueprint

bp = Blueprint("public", __name__)

from convene.public import group, privacy, program, routes  # noqa: E402,F401  (routes attach themselves to bp)
