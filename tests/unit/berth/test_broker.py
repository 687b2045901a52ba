"""The embedded broker redelivers what a killed worker held, and keeps no acked rows."""
from __future__ import annotations

import sqlite3

import pytest
from kombu import Connection

from berth.broker import EmbeddedTransport


@pytest.fixture
def broker(tmp_path):
    path = tmp_path / "broker.sqlite"

    def connect(visibility_timeout=3600.0):
        return Connection(f"sqlite:///{path}", transport=EmbeddedTransport,
                          transport_options={"visibility_timeout": visibility_timeout})

    return path, connect


def rows(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT visible FROM kombu_message ORDER BY id").fetchall()


def send(connect, body="task"):
    with connect() as connection:
        connection.SimpleQueue("q").put(body)


def test_an_acked_message_leaves_no_row(broker):
    path, connect = broker
    send(connect)
    with connect() as connection:
        queue = connection.SimpleQueue("q")
        queue.get(timeout=1).ack()
        queue.close()
    assert rows(path) == []


def test_a_message_held_by_a_killed_worker_comes_back_after_the_timeout(broker):
    path, connect = broker
    send(connect)
    killed = connect(visibility_timeout=0)
    message = killed.SimpleQueue("q").get(timeout=1)
    assert message.payload == "task" and rows(path) == [(0,)]
    # Killed: no ack, no warm shutdown (which would put it back); its memory is gone.
    with connect(visibility_timeout=0) as connection:
        again = connection.SimpleQueue("q").get(timeout=1)
        assert again.payload == "task" and again.delivery_info["redelivered"] is True
        again.ack()
    assert rows(path) == []


def test_a_message_being_worked_on_is_not_handed_out_twice(broker):
    path, connect = broker
    send(connect)
    worker = connect()
    worker.SimpleQueue("q").get(timeout=1)  # held, not acked: still running
    with connect() as other:
        queue = other.SimpleQueue("q")
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.2)
        queue.close()
    assert rows(path) == [(0,)]


def test_a_warm_shutdown_puts_the_message_back_without_a_copy(broker):
    path, connect = broker
    send(connect)
    with connect() as connection:
        queue = connection.SimpleQueue("q")
        queue.get(timeout=1).requeue()
        assert rows(path) == [(1,)]
        assert queue.get(timeout=1).payload == "task"
        queue.close()


def test_acked_rows_of_the_old_transport_are_dropped_not_redelivered(broker):
    path, connect = broker
    send(connect)
    send(connect, "second")
    with sqlite3.connect(path) as db:  # what kombu's own transport left behind: acked rows
        db.execute("UPDATE kombu_message SET visible = 0, timestamp = '2020-01-01'"
                   " WHERE id = (SELECT min(id) FROM kombu_message)")
        db.execute("DROP TABLE berth_broker_schema")
    EmbeddedTransport.Channel._prepared.clear()  # a new process opens the file
    with connect(visibility_timeout=0) as connection:
        queue = connection.SimpleQueue("q")
        assert queue.get(timeout=1).payload == "second"
        queue.close()
