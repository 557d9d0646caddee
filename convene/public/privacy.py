"""The privacy notice every public form links to, and the plain page emailed links give once data is erased."""
from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request

from convene.errors import message_for
from convene.extensions import db
from convene.languages import localized
from convene.models import Convening
from convene.public import bp
from convene.public.routes import published_convening
from convene.services import privacy as service


@bp.get("/c/<slug>/privacy")
def privacy(slug: str):
    """The convening's privacy notice: the organizers' own text, or the default one."""
    convening = published_convening(slug)
    return render_template("public/privacy.html", convening=convening, text=service.notice_text(convening),
                           erased_on=service.local_day(convening, convening.personal_data_erased_at))


@bp.before_app_request
def erased_links_are_gone():
    """Every emailed link (manage, offer, order, their files) of an erased convening answers 410 Gone, plainly."""
    args = request.view_args or {}
    if "token" not in args or "slug" not in args or "\x00" in args["slug"]:
        return None  # a NUL is refused by the request guard that runs next
    convening = db.session.execute(
        sa.select(Convening).where(Convening.slug == args["slug"], Convening.published.is_(True),
                                   Convening.personal_data_erased_at.is_not(None))
    ).scalar_one_or_none()
    if convening is None:
        return None
    day = service.local_day(convening, convening.personal_data_erased_at)
    message = message_for("personal_data_erased", name=localized(convening, "name"), day=day)
    return render_template("public/gone.html", convening=convening, message=message), 410
