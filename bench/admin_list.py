"""Benchmark: the back-office request list and CSV export at 100,000 requests.

Seeds a temporary SQLite database with ``flask --app portal seed-demo --requests N``
(and a temporary PostgreSQL database too with --postgres URL or TEST_DATABASE_URL),
then prints the median time of the list page (first page, a filtered page, a
search, a deep page), and the export's rows per second and peak memory growth.

    .venv/bin/python bench/admin_list.py [--requests 100000] [--postgres URL]
        [--database URL ...]

``--database URL`` (repeatable) measures a database seeded already (``seed-demo
--requests N`` and ``create-user bench-admin@example.com`` with the password below)
instead of seeding new ones: seeding 100,000 requests takes minutes on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import BENCH_ENCRYPTION_KEY, throwaway_postgres  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import ConsultationRequest  # noqa: E402

ADMIN_EMAIL = "bench-admin@example.com"
PASSWORD = "bench password long enough"  # noqa: S105 - a throw-away benchmark database
PAGES = {
    "first page": "/admin/requests",
    "filtered (status=new)": "/admin/requests?status=new",
    "search (name, start)": "/admin/requests?q=garc",
    "search (email prefix)": "/admin/requests?q=rosa.lee.5",
    "search (name, no accents)": "/admin/requests?q=maria+lopez",
    "search (part of an email)": "/admin/requests?q=jose.nunez",
    "search (phone, any format)": "/admin/requests?q=(415)+000-1234",
    "deep page": "/admin/requests?page=1900",
}
TARGET_MS, TARGET_ROWS_PER_S, TARGET_MB = 100, 20_000, 50


def seed(url: str, count: int) -> None:
    env = {**os.environ, "FLASK_SQLALCHEMY_DATABASE_URI": url,
           "FLASK_SECRET_KEY": "bench-secret-key-not-for-production",
           "FLASK_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY, "PORTAL_PASSWORD": PASSWORD}
    flask = [str(ROOT / ".venv/bin/flask"), "--app", "portal"]
    started = time.perf_counter()
    subprocess.run([*flask, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([*flask, "seed-demo", "--requests", str(count)], env=env, check=True,
                   capture_output=True)
    subprocess.run([*flask, "create-user", ADMIN_EMAIL, "--role", "admin"], env=env,
                   check=True, capture_output=True)
    print(f"  seeded {count:,} requests in {time.perf_counter() - started:.1f} s")


def signed_in_client(app):
    client = app.test_client()
    response = client.post("/admin/login", data={"email": ADMIN_EMAIL, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def median_ms(client, url: str, runs: int = 15) -> float:
    client.get(url)  # warm caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def export_once(client) -> int:
    response = client.get("/admin/requests/export.csv")
    rows = sum(chunk.count(b"\n") for chunk in response.response) - 1
    response.close()
    return rows


def export(client) -> tuple[int, float, float]:
    """Rows, rows per second (untraced run) and peak memory growth (traced run)."""
    started = time.perf_counter()
    rows = export_once(client)
    rate = rows / (time.perf_counter() - started)
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    export_once(client)
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    return rows, rate, peak / 1e6


def run(label: str, url: str, count: int, figures: dict[str, dict[str, float]]) -> bool:
    print(f"\n{label}")
    if count:
        seed(url, count)
    # No second factor: the benchmark signs in with a password only.
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REQUIRE_MFA": False,
                      "ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "TESTING": True})
    client = signed_in_client(app)
    ok = True
    with app.app_context():
        reference = db.session.scalar(select(ConsultationRequest.reference).limit(1))
    pages = {**PAGES, "search (reference, C-)": f"/admin/requests?q={reference.lower()}",
             "search (reference, no C-)": f"/admin/requests?q={reference[2:]}"}
    for name, page in pages.items():
        ms = median_ms(client, page)
        figures.setdefault(name, {})[label] = ms
        ok &= ms < TARGET_MS
        print(f"  list, {name:<28} median {ms:7.1f} ms  {'ok' if ms < TARGET_MS else 'SLOW'}")
    rows, rate, peak_mb = export(client)
    ok &= rate >= TARGET_ROWS_PER_S and peak_mb < TARGET_MB
    print(f"  export: {rows:,} rows, {rate:,.0f} rows/s, peak memory growth {peak_mb:.1f} MB")
    with app.app_context():
        db.engine.dispose()
    return ok




def print_summary(figures: dict[str, dict[str, float]]) -> None:
    """One line per kind of page, each database's median side by side."""
    databases = list(dict.fromkeys(db for by_db in figures.values() for db in by_db))
    print(f"\n{'median ms':<30}" + "".join(f"{name:>12}" for name in databases))
    for kind, by_db in figures.items():
        print(f"  {kind:<28}" + "".join(f"{by_db.get(name, float('nan')):12.1f}"
                                      for name in databases))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--database", action="append", default=[],
                        help="measure this seeded database instead (repeatable)")
    args = parser.parse_args()
    ok = True
    figures: dict[str, dict[str, float]] = {}
    if args.database:
        for url in args.database:
            ok &= run("SQLite" if url.startswith("sqlite") else "PostgreSQL", url, 0, figures)
        print_summary(figures)
        return 0 if ok else 1
    with tempfile.TemporaryDirectory() as tmp:
        ok &= run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", args.requests, figures)
    if args.postgres:
        with throwaway_postgres(args.postgres) as url:
            ok &= run("PostgreSQL", url, args.requests, figures)
    print_summary(figures)
    print(f"\nTargets: list < {TARGET_MS} ms, export >= {TARGET_ROWS_PER_S:,} rows/s and "
          f"< {TARGET_MB} MB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
