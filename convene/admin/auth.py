"""Sign in and out, and change one's own password."""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from convene import throttle
from convene.admin import bp
from convene.admin.access import PUBLIC, SIGNED_IN, allow
from convene.admin.account_forms import ForgotPasswordForm, ResetPasswordForm
from convene.admin.forms import ChangePasswordForm, LoginForm
from convene.errors import ConveneError
from convene.forms import EmptyForm, show_error
from convene.services import passwords
from convene.services.users import authenticate, change_password, end_sessions


def _is_local_path(target: str) -> bool:
    """A path on this site: one leading slash, no scheme or host, nothing a browser reads as a host."""
    parts = urlsplit(target)
    return (
        target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target
        # Browsers drop tabs and newlines inside URLs, so "/\t/evil.example" would become "//evil.example".
        and not any(ch < " " or ch == "\x7f" for ch in target)
        and not parts.scheme and not parts.netloc
    )


def _safe_next(target: str | None) -> str:
    # Checked decoded too: a slash or backslash spelled %2F/%5C must not start a host either.
    if target and _is_local_path(target) and _is_local_path(unquote(target)):
        return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC, PUBLIC)
@throttle.sign_in_posts
def login():
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        throttle.check_sign_in(form.email.data)  # a locked-out email is refused before its password is looked at
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            throttle.record_sign_in_failure(form.email.data)
            form.password.errors.append(_("That email and password do not match an active account."))
        else:
            throttle.clear_sign_in_failures(form.email.data)
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", form=form)


@bp.post("/logout")
@allow(SIGNED_IN, SIGNED_IN)
def logout():
    """Sign out here and everywhere else: other browsers' sessions and remember cookies end too."""
    if EmptyForm().validate_on_submit():
        end_sessions(current_user.id)
        logout_user()
        flash(_("You are signed out."), "info")
    return redirect(url_for("admin.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@allow(SIGNED_IN, SIGNED_IN)
def account_password():
    """Change one's own password; every other session of the account ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = change_password(current_user.email, form.new_password.data,
                                   current_password=form.current_password.data)
        except ConveneError as error:
            show_error(form, error)
        else:
            # This browser stays signed in under the new version; a remember cookie it had is renewed.
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
            login_user(user, remember=remembered)
            flash(_("Your password is changed. Other browsers signed in to this account are signed out."), "success")
            return redirect(url_for("admin.index"))
    return render_template("admin/account_password.html", form=form)


# -- a forgotten password ------------------------------------------------------------------------

@bp.route("/password/forgot", methods=["GET", "POST"])
@allow(PUBLIC, PUBLIC)
@throttle.password_reset_posts
def forgot_password():
    """Ask for a link to choose a new password; the answer is the same whether the account exists or not."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        passwords.request_password_reset(form.email.data,
                                         hourly_cap=throttle.setting("PASSWORD_RESET_EMAILS_PER_HOUR"))
        flash(_("If %(email)s belongs to an active account, a link to choose a new password is on its way. "
                "Check your inbox (and spam folder) in a few minutes.", email=form.email.data), "success")
        return redirect(url_for("admin.forgot_password"))
    return render_template("admin/password_forgot.html", form=form, duration=passwords.link_duration())


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@allow(PUBLIC, PUBLIC)
@throttle.password_reset_posts
def reset_password(token: str):
    """Choose a new password from an emailed link; every session of the account ends."""
    try:
        user = passwords.check_reset_link(token)
    except ConveneError as error:
        return _reset_link_closed(error)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            passwords.reset_password(token, form.new_password.data)
        except ConveneError as error:
            if error.field is None:
                return _reset_link_closed(error)
            show_error(form, error)
        else:
            if current_user.is_authenticated:
                logout_user()
            flash(_("Your new password is set and every device signed in to the account is signed out. "
                  "Sign in with the new password."), "success")
            return redirect(url_for("admin.login"))
    return render_template("admin/password_reset.html", form=form, user=user), 400 if form.errors else 200


def _reset_link_closed(error: ConveneError):
    return render_template(
        "admin/link_closed.html", title=_("This link cannot be used"), message=error.message,
        links=[(url_for("admin.forgot_password"), _("Ask for a new link")), (url_for("admin.login"), _("Sign in"))],
    ), error.status_code
