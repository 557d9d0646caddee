"""A convening's team: who has which role, invitations by email, and the page where an invitation is accepted."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user

from convene import throttle
from convene.admin import bp
from convene.admin.access import PUBLIC, allow
from convene.admin.team_forms import ROLE_CHOICES, AcceptInvitationForm, InviteForm, RoleForm
from convene.admin.util import child_or_404, convening_or_404, show_error
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import EmptyForm
from convene.models import Convening, Invitation, Membership, TeamRole, User
from convene.permissions import Permission, can
from convene.services import teams

# Refusals that mean the link itself no longer works: shown on a page of their own, not beside a field.
CLOSED_LINK = {"invitation_invalid", "invitation_used", "invitation_revoked", "invitation_expired"}


def _render_team(convening: Convening, *, invite_form: InviteForm | None = None,
                 role_error: tuple[int, str] | None = None, status: int = 200):
    members = teams.team_of(convening.id)
    owners = sum(1 for member in members if member.role == TeamRole.OWNER)
    return render_template(
        "admin/teams/team.html", convening=convening, members=members, owners=owners,
        everywhere=teams.everywhere_members(), invitations=teams.pending_invitations(convening.id),
        invite_form=invite_form or InviteForm(formdata=None), role_choices=ROLE_CHOICES,
        action_form=EmptyForm(formdata=None), role_error=role_error, role_label=teams.role_label,
    ), status


@bp.get("/c/<int:convening_id>/team")
@allow(Permission.TEAM)
def team(convening_id: int):
    """The team: members with their roles, open invitations, and the form to invite someone."""
    return _render_team(convening_or_404(convening_id))


@bp.post("/c/<int:convening_id>/team/invite")
@allow(Permission.TEAM, Permission.TEAM)
def invite_member(convening_id: int):
    """Email someone a link to join the team with a role."""
    convening = convening_or_404(convening_id)
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invitation = teams.invite_member(convening.id, form.email.data, form.role.data,
                                             invited_by_id=current_user.id)
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("%(email)s is invited as %(role_label)s. The emailed link works once, until %(local)s.",
                    email=invitation.email, role_label=teams.role_label(invitation.role),
                    local=format(convening.local(invitation.expires_at), '%d %B %Y')), "success")
            return redirect(url_for("admin.team", convening_id=convening.id))
    return _render_team(convening, invite_form=form, status=400)


@bp.post("/c/<int:convening_id>/team/<int:member_id>/role")
@allow(Permission.TEAM, Permission.TEAM)
def change_member_role(convening_id: int, member_id: int):
    """Give a member another role."""
    convening = convening_or_404(convening_id)
    member = child_or_404(Membership, convening, member_id)
    form = RoleForm()
    if form.validate_on_submit():
        try:
            teams.change_member_role(convening.id, member.id, form.role.data)
        except ConveneError as error:
            return _render_team(convening, role_error=(member.id, error.message), status=400)
        person = member.user.name or member.user.email
        flash(_("%(person)s is now %(role_label)s.",
                person=person, role_label=teams.role_label(member.role)), "success")
        if member.user_id == current_user.id and not can(current_user, Permission.TEAM, convening):
            return redirect(url_for("admin.dashboard", convening_id=convening.id))
        return redirect(url_for("admin.team", convening_id=convening.id))
    return _render_team(convening, role_error=(member.id, _("Choose one of the roles listed.")), status=400)


@bp.route("/c/<int:convening_id>/team/<int:member_id>/remove", methods=["GET", "POST"])
@allow(Permission.TEAM, Permission.TEAM)
def remove_member(convening_id: int, member_id: int):
    """Take someone off the team, after a confirmation that says what they lose."""
    convening = convening_or_404(convening_id)
    member = child_or_404(Membership, convening, member_id)
    user = db.session.get(User, member.user_id)
    form = EmptyForm()
    problem = None
    if form.validate_on_submit():
        try:
            teams.remove_member(convening.id, member.id)
        except ConveneError as error:
            problem = error.message
        else:
            if user.id == current_user.id:
                flash(_("You left the team of %(convening)s.", convening=convening.name), "success")
                if not can(current_user, Permission.VIEW, convening):
                    return redirect(url_for("admin.index"))
                if not can(current_user, Permission.TEAM, convening):
                    return redirect(url_for("admin.dashboard", convening_id=convening.id))
            else:
                flash(_("%(person)s is no longer on the team of %(convening)s.",
                        person=user.name or user.email, convening=convening.name), "success")
            return redirect(url_for("admin.team", convening_id=convening.id))
    return render_template("admin/teams/remove.html", convening=convening, member=member, user=user, form=form,
                           problem=problem, role_label=teams.role_label,
                           yourself=user.id == current_user.id), 400 if problem else 200


@bp.post("/c/<int:convening_id>/team/invitations/<int:invitation_id>/revoke")
@allow(Permission.TEAM, Permission.TEAM)
def revoke_invitation(convening_id: int, invitation_id: int):
    """Withdraw an open invitation: its link stops working."""
    convening = convening_or_404(convening_id)
    invitation = child_or_404(Invitation, convening, invitation_id)
    if EmptyForm().validate_on_submit():
        try:
            teams.revoke_invitation(convening.id, invitation.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("The invitation to %(email)s is withdrawn; its link no longer works.",
                    email=invitation.email), "success")
    return redirect(url_for("admin.team", convening_id=convening.id))


# -- accepting an invitation (no account needed) ---------------------------------------------------

def _closed(error: ConveneError):
    signed_in = current_user.is_authenticated
    return render_template(
        "admin/link_closed.html", title=_("This invitation cannot be used"), message=error.message,
        links=[(url_for("admin.index") if signed_in else url_for("admin.login"),
                _("Go to your convenings") if signed_in else _("Sign in"))],
    ), error.status_code


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@allow(PUBLIC, PUBLIC)
@throttle.sign_in_posts
def accept_invitation(token: str):
    """Join a convening's team from an emailed invitation: as the signed-in account, or as a new one."""
    try:
        found = teams.find_invitation(token)
    except ConveneError as error:
        return _closed(error)
    signed_in = current_user.is_authenticated
    form = EmptyForm() if signed_in else AcceptInvitationForm()
    needs_sign_in = not signed_in and found.account_exists
    status = 200
    if request.method == "POST" and not needs_sign_in and form.validate_on_submit():
        try:
            membership = teams.accept_invitation(
                token, user_id=current_user.id if signed_in else None,
                name=None if signed_in else form.name.data, password=None if signed_in else form.password.data)
        except ConveneError as error:
            if error.code in CLOSED_LINK:
                return _closed(error)
            if error.code == "invitation_sign_in":
                needs_sign_in = True
            else:
                show_error(form, error)
            status = 400
        else:
            if not signed_in:
                login_user(db.session.get(User, membership.user_id))
            flash(_("You joined the team of %(convening)s as %(role_label)s.",
                    convening=found.convening.name, role_label=teams.role_label(membership.role)), "success")
            return redirect(url_for("admin.dashboard", convening_id=membership.convening_id))
    elif request.method == "POST":
        status = 400
    return render_template(
        "admin/teams/accept.html", invitation=found.invitation, invited_to=found.convening, form=form,
        signed_in=signed_in, needs_sign_in=needs_sign_in, role=teams.role_label(found.invitation.role),
        login_url=url_for("admin.login", next=url_for("admin.accept_invitation", token=token)),
    ), status
