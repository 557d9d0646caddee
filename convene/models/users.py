"""Back-office accounts; what each may do on a convening comes from its memberships (models/teams.py)."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from convene.models.base import Base, TimestampMixin, UTCDateTime


class User(UserMixin, TimestampMixin, Base):
    """A person who signs in to /admin."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(160), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    # A platform administrator creates convenings and may do anything on every one of them.
    is_admin: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of every session's and remember cookie's identity: raising it signs the account out everywhere.
    session_version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        """The identity sessions and remember cookies carry: id and session version, so a version bump ends them."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.active


    def __repr__(self) -> str:
        return f"<User {self.email}>"
