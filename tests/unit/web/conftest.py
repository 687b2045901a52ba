"""Fixtures shared by the web tests."""
import pytest

from berth import accounts, db
from berth.models import Membership
from berth.workloads import definitions

IMAGE = "127.0.0.1:5000/library/busybox:1"


@pytest.fixture
def site(app, admin):
    """Application `site` with one service `web` (never deployed) in the project `default`,
    and a user `viewer`, a guest of that project: sees it, cannot change it."""
    with app.app_context(), db.unit_of_work():
        application = definitions.create_application({"name": "site", "services": [
            {"name": "web", "image": IMAGE}]}, actor="admin")
        viewer = accounts.create_user("viewer", "viewer-password")
        db.session.flush()
        db.session.add(Membership(project=application.project, user_id=viewer.id, role="guest"))
