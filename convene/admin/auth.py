"""Sign in and out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from convene.admin import bp
from convene.admin.forms import LoginForm
from convene.forms import EmptyForm
from convene.services.users import authenticate


def _safe_next(target: str | None) -> str:
    if target and urlsplit(target).netloc == "" and target.startswith("/"):
        return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("That email and password do not match an active account.")
        else:
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", form=form)


@bp.post("/logout")
def logout():
    """Sign out."""
    if EmptyForm().validate_on_submit():
        logout_user()
        flash("You are signed out.", "info")
    return redirect(url_for("admin.login"))
