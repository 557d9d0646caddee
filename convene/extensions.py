"""Extensions are made here, unbound, and bound to the app in the factory."""
from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from convene.models.base import Base
from convene.models.registrations import autogenerate_includes

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True, include_name=autogenerate_includes)
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
# Limits are declared where they apply (sign-in, registration, codes); storage is RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address)
