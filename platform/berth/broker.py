"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, no server needed."""
from kombu.transport.sqlalchemy import Transport


class EmbeddedTransport(Transport):
    # kombu polls the table; its default 1 s would add up to a second to every task.
    # (Passing polling_interval as a transport option does not work with this transport:
    # it hands every option to create_engine.)
    polling_interval = 0.05
