"""The WSGI entry point for gunicorn (see the Procfile): `gunicorn web.wsgi:app`."""
from web import create_app

app = create_app()
