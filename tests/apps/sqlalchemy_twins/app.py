#!/usr/bin/env python3
"""A tiny SQLAlchemy app traced by BOTH the SQLAlchemy and the sqlite3 driver instrumentation.

Made once to record `tests/fixtures/sqlalchemy_twins_otlp.pb` (see tests/fixtures/README.md):
every query then appears twice, as a SQLAlchemy span and as a sqlite3 (DB-API) span with the same
statement, and apmtop must count it once and never call the pair a duplicate.

    python app.py --otlp http://127.0.0.1:4318/v1/traces

It seeds a SQLite file (untraced), starts a WSGI server on a free port behind the OpenTelemetry
WSGI middleware (SERVER spans; the view sets `http.route` as framework instrumentations do),
makes these requests to itself, then flushes the exporter and exits:

    GET /books/        x2   1 + 8 queries: the book list, then each book's author (N+1, 8 repeats)
    GET /books/fixed/  x2   1 query: books joined with authors (the fix)

Packages: tests/apps/sqlalchemy_twins/requirements.txt (on top of the Django app's pins).
"""

import argparse
import os
import sqlite3
import tempfile
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

BOOKS = 8


def seed(path):
    """Eight authors, one book each, written without tracing."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE book (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
                               author_id INTEGER NOT NULL REFERENCES author(id));
            """
        )
        for i in range(1, BOOKS + 1):
            db.execute("INSERT INTO author (id, name) VALUES (?, ?)", (i, f"Author {i}"))
            db.execute("INSERT INTO book (id, title, author_id) VALUES (?, ?, ?)", (i, f"Book {i}", i))


def build_app(path):
    # Imported after the sqlite3 instrumentation is on, so the engine's connections are traced.
    from sqlalchemy import ForeignKey, create_engine, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, joinedload, mapped_column, relationship

    class Base(DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = "author"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    class Book(Base):
        __tablename__ = "book"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
        author: Mapped[Author] = relationship(lazy="select")

    engine = create_engine(f"sqlite:///{path}")
    SQLAlchemyInstrumentor().instrument(engine=engine)

    def books(fixed):
        with Session(engine) as session:
            query = select(Book).order_by(Book.id)
            if fixed:
                query = query.options(joinedload(Book.author))
            return [f"{b.title} by {b.author.name}" for b in session.scalars(query)]

    routes = {"/books/": lambda: books(False), "/books/fixed/": lambda: books(True)}

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        view = routes.get(path)
        if view is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        trace.get_current_span().set_attribute("http.route", path)
        body = "\n".join(view()).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return OpenTelemetryMiddleware(app)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otlp", default="http://127.0.0.1:4318/v1/traces", help="OTLP/HTTP traces URL")
    args = parser.parse_args()

    provider = TracerProvider(resource=Resource.create({"service.name": "sqlalchemy-twins"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=args.otlp)))
    trace.set_tracer_provider(provider)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "library.sqlite3")
        seed(path)
        SQLite3Instrumentor().instrument()
        server = make_server("127.0.0.1", 0, build_app(path), handler_class=QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        for path_info in ["/books/", "/books/fixed/", "/books/", "/books/fixed/"]:
            with urllib.request.urlopen(base + path_info) as answer:
                answer.read()
        server.shutdown()
    provider.force_flush()
    provider.shutdown()


if __name__ == "__main__":
    main()
