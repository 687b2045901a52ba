"""The navigation bar: areas appear once their blueprint is registered."""
from flask import Flask, current_app

NAV = [
    ("pages.dashboard", "Overview"),
    ("projects.index", "Projects"),
    ("hosts.index", "Hosts"),
    ("services.index", "Services"),
    ("events.index", "Events"),
]


def init_app(app: Flask) -> None:
    @app.context_processor
    def _nav():
        def nav_items():
            return [(e, label) for e, label in NAV if e in current_app.view_functions]

        return {"nav_items": nav_items}
