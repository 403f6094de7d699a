"""Unbound extension singletons: bound to an app in ``create_app``, so nothing imports the app."""

from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from portal.db import Base
from portal.ratelimit import PortalLimiter

#: expire_on_commit=False: what a request loaded stays loaded after its write transaction
#: commits (no reload per attribute); code that needs the database's view re-reads explicitly
#: (row locks use populate_existing, tests use a rollback).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = PortalLimiter(key_func=get_remote_address)
