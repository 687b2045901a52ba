"""Discovery's blocking query: it returns when the endpoints change, and a web process lets
only a few wait at once, so watchers never take every thread."""
from __future__ import annotations

import threading
import time

from sqlalchemy import update

from berth import db
from berth.models import Service

PATH = "/api/v1/applications/site/services/web/endpoints"


def test_a_blocking_query_returns_when_the_endpoints_change(app, client, site, admin):
    def change_soon():
        time.sleep(0.3)
        with app.app_context(), db.unit_of_work():
            db.session.execute(update(Service).values(endpoints=["127.0.0.1:20001"],
                                                      endpoints_version=1))
    changer = threading.Thread(target=change_soon)
    changer.start()
    started = time.monotonic()
    answer = client.get(PATH, query_string={"index": 0, "wait": 20}, headers=admin)
    changer.join()
    assert answer.status_code == 200
    assert answer.json == {"service": "web", "index": 1, "endpoints": ["127.0.0.1:20001"]}
    assert time.monotonic() - started < 10  # woken by the change, not by the 20 s wait


def test_when_every_slot_waits_the_next_query_is_told_to_retry(app, client, site, admin):
    slots = app.extensions["berth.blocking_queries"] = threading.BoundedSemaphore(1)
    slots.acquire()  # another watcher holds the only slot
    try:
        refused = client.get(PATH, query_string={"index": 0, "wait": 5}, headers=admin)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert "retry" in refused.json["error"]
        assert client.get(PATH, headers=admin).status_code == 200  # no index: never waits
    finally:
        slots.release()
    waited = client.get(PATH, query_string={"index": 0, "wait": 0.2}, headers=admin)
    assert waited.status_code == 200 and waited.json["index"] == 0
