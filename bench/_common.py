"""Helpers the benchmark scripts share. Nothing from the portal is imported here, so a
script that measures another copy of the tree (bench/details_page.py) can use them.
`make bench` runs every script in bench/ but this one."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

# The key the benchmarks' throw-away databases keep their free text encrypted with
# (ENCRYPTION_KEYS): the base64 of 32 bytes, never a production key.
BENCH_ENCRYPTION_KEY = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtISE="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def throwaway_postgres(base: str) -> Iterator[str]:
    """A new, empty PostgreSQL database next to ``base`` (an SQLAlchemy URL), dropped
    afterwards; yields its URL."""
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://")
    name = f"portal_bench_{secrets.token_hex(4)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
