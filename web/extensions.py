"""Extensions, created once here and attached to the app in create_app()."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_smorest import Api as _Api
from flask_wtf import CSRFProtect

from web.errors import api_error_response

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message_category = "warning"

csrf = CSRFProtect()

# No default limits: only failed logins are counted (web.security.LoginFailures), so a
# client with a valid credential is never throttled, however fast it calls. A moving window:
# a fixed one lets twice the limit through around a window's edge.
limiter = Limiter(get_remote_address, strategy="moving-window")


class Api(_Api):
    """flask-smorest's Api with Berth's one JSON error shape."""

    def handle_http_exception(self, error):
        return api_error_response(error)


api = Api()
