"""The navigation bar: areas appear once their blueprint is registered."""
from flask import Flask, current_app
from flask_login import current_user

NAV = [
    ("pages.dashboard", "Overview"),
    ("projects.index", "Projects"),
    ("hosts.index", "Hosts"),
    ("services.index", "Services"),
    ("events.index", "Events"),
    ("alerts.index", "Alerts"),
]
# Only system administrators see these.
ADMIN_NAV = [
    ("users.index", "Users"),
    ("mirrors.index", "Mirrors"),
]


def init_app(app: Flask) -> None:
    @app.context_processor
    def _nav():
        def nav_items():
            items = NAV + (ADMIN_NAV if getattr(current_user, "is_admin", False) else [])
            return [(e, label) for e, label in items if e in current_app.view_functions]

        return {"nav_items": nav_items}
