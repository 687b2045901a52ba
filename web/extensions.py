"""Extensions, created once here and attached to the app in create_app()."""
from flask_login import LoginManager
from flask_smorest import Api as _Api
from flask_wtf import CSRFProtect

from web.errors import api_error_response

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message_category = "warning"

csrf = CSRFProtect()


class Api(_Api):
    """flask-smorest's Api with Berth's one JSON error shape."""

    def handle_http_exception(self, error):
        return api_error_response(error)


api = Api()
