"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, no server needed,
made to redeliver what a killed worker held, as Redis does.

Why kombu's transport alone loses a task when a whole worker is killed: fetching a message
only sets its row's `visible` to false; the row's fate is then kept in the worker's memory
(kombu's virtual QoS). An ack forgets it (the row stays, invisible, forever: the table only
grows), and a warm shutdown or a lost pool child puts it back (a new row). A worker killed
with -9, or a machine that loses power, takes that memory with it: nothing ever makes the
row visible again, so its task never runs. Redis has a visibility timeout for exactly this.

This transport gives the embedded broker one too: an acked or rejected message's row is
deleted; a row handed out longer than `visibility_timeout` seconds ago and neither acked nor
put back is handed out again (marked redelivered). So the message survives its worker, and
a still-running task is not run twice as long as the timeout is above the longest task
(berth.celery_app.VISIBILITY_TIMEOUT_S, 20 minutes).

What a worker killed with -9 costs, then: nothing is lost for good, but its tasks come back
only after the timeout, so the prompt paths lean on the periodic ones meanwhile. A deploy or
scale (deploy_application) is converged by the reconcile round, every 15 s, from the desired
state in the database; a task killed after it acted runs again, which idempotent tasks
allow. Beat's rounds (probes, CPU, reconcile) carry `expires`, so a late redelivery of an old
round is dropped and the next round does its work; the autoscaler runs again after the next
CPU round. Messages a warm shutdown puts back, and those of a pool child that died, are
handed out again at once, as before.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kombu.transport import virtual
from kombu.transport.sqlalchemy import Channel, Transport
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from sqlalchemy import create_engine, delete, or_, text, update

# Options kombu's Channel reads itself; everything else would go to create_engine.
_KOMBU_OPTIONS = ("queue_tablename", "message_tablename", "callback", "errback", "max_retries",
                  "interval_start", "interval_step", "interval_max", "retry_errors",
                  "visibility_timeout", "polling_interval")
DEFAULT_VISIBILITY_TIMEOUT_S = 3600.0
# Marks a broker file whose invisible rows mean "handed out, not yet acked". Before this
# transport they also meant "acked long ago", and those must not be redelivered.
_SCHEMA_TABLE = "berth_broker_schema"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class EmbeddedChannel(Channel):
    # kombu polls the table; its default 1 s would add up to a second to every task.
    polling_interval = 0.05
    _prepared: set[str] = set()

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        options = connection.client.transport_options
        self.visibility_timeout = float(options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT_S))
        # delivery tag -> (row, when this channel handed it out), for the messages it holds
        self._rows: dict[str, tuple[int, datetime]] = {}

    def _engine_from_config(self):
        conninfo = self.connection.client
        options = {k: v for k, v in conninfo.transport_options.items() if k not in _KOMBU_OPTIONS}
        return create_engine(conninfo.hostname, **options)

    def _open(self):
        engine, session_factory = super()._open()
        url = self.connection.client.hostname
        if url not in self._prepared:
            with engine.begin() as connection:
                connection.execute(text(f"CREATE TABLE IF NOT EXISTS {_SCHEMA_TABLE} (version INTEGER)"))
                if connection.execute(text(f"SELECT count(*) FROM {_SCHEMA_TABLE}")).scalar() == 0:
                    # A file from before: its invisible rows were acked long ago.
                    connection.execute(text(f"DELETE FROM {self.message_tablename} WHERE visible = 0"))
                    connection.execute(text(f"INSERT INTO {_SCHEMA_TABLE} (version) VALUES (1)"))
            self._prepared.add(url)
        return engine, session_factory

    def _get(self, queue):
        obj = self._get_or_create(queue)
        session = self.session
        if session.bind.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            now = _now()
            message = self.message_cls
            row = (session.query(message).with_for_update()
                   .filter(message.queue_id == obj.id)
                   .filter(or_(message.visible != False,  # noqa: E712 (SQL, not Python)
                               message.sent_at < now - timedelta(seconds=self.visibility_timeout)))
                   .order_by(message.visible.desc(), message.sent_at, message.id)
                   .limit(1).first())
            if row is None:
                raise virtual.Empty()
            payload = loads(bytes_to_str(row.payload))
            if not row.visible:  # its previous holder went silent
                payload["redelivered"] = True
                payload.setdefault("properties", {}).setdefault("delivery_info", {})["redelivered"] = True
            # sent_at now says when it was handed out: the visibility timeout counts from here.
            row.visible, row.sent_at = False, now
            tag = payload.get("properties", {}).get("delivery_tag")
            if tag is not None:
                self._rows[tag] = (row.id, now)
            return payload
        finally:
            session.commit()

    # Acks and requeues come from other threads than the polling loop (in a prefork worker,
    # the pool's result handler acks a late-acked task), and a Session is not thread-safe: each
    # of these writes takes a connection of its own from the (thread-safe) engine.
    def _write(self, statement) -> None:
        engine, _ = self._open()
        with engine.begin() as connection:
            connection.execute(statement)

    def _forget(self, delivery_tag) -> None:
        held = self._rows.pop(delivery_tag, None)
        if held is not None:
            table = self.message_cls.__table__
            self._write(delete(table).where(table.c.id == held[0]))

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple)
        self._forget(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)  # a requeue goes through _restore
        self._forget(delivery_tag)

    def _restore(self, message):
        """Put a message back: its own row visible again, rather than a copy beside it
        (which would leave the original to be redelivered after the timeout as well)."""
        held = self._rows.pop(message.delivery_tag, None)
        if held is None:
            return super()._restore(message)
        row_id, handed_at = held
        table = self.message_cls.__table__
        # Only if it is still ours: another worker may have taken it after the timeout.
        self._write(update(table).where(table.c.id == row_id, table.c.timestamp == handed_at)
                    .values(visible=True))
        return None


class EmbeddedTransport(Transport):
    Channel = EmbeddedChannel
    # (Passing polling_interval as a transport option does not work with kombu's own
    # transport: it hands every option to create_engine. Here it is a class attribute.)
    polling_interval = 0.05
