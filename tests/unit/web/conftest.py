"""Fixtures shared by the web tests."""
import pytest

from berth import accounts, db
from berth.workloads import definitions

IMAGE = "127.0.0.1:5000/library/busybox:1"


@pytest.fixture
def site(app, admin):
    """Application `site` with one service `web` (never deployed), and a user `viewer`."""
    with app.app_context(), db.unit_of_work():
        definitions.create_application({"name": "site", "services": [
            {"name": "web", "image": IMAGE}]}, actor="admin")
        accounts.create_user("viewer", "viewer-password")
