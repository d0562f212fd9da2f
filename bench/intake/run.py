"""CPU per API intake request, in process: a signed POST /api/v1/aftersales through Django's
WSGI handler (middleware, signature, parsing, storing), variant against variant (PostgreSQL).

Each variant is a way of doing one step, swapped in process and interleaved with the others in
blocks of ``--block`` requests, so a loaded machine skews them alike. Per request: the CPU of
this process (Python: Django, psycopg) and of its PostgreSQL backend (read from /proc, as
bench/decide/statements.py does), and the median wall time. Every request is a new
after-sales id on a new order of three items (products from a pool of 50, so most already
exist). The publish of the decision task is left out (a no-op): another bench measures it and
it needs a broker.

    python bench/intake/run.py                  # ~30 s: 400 requests per variant
    python bench/intake/run.py --requests 1000 --json bench/results/intake.json

Variants:
- ``secret: decrypt`` / ``secret: cached``: the two sealed secrets Fernet-decrypted on every
  request, or remembered per process (strategies/encryption.py);
- ``store: orm`` / ``store: sql``: intake's writes as the ORM path (five statements: order
  upsert, items delete, items insert, products, request) or PostgreSQL's two statements
  (strategies/pipeline/intake.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import DEFAULT_BROKER, database_url, print_table, setup_django, write_json
from bench.decide.statements import backend_cpu_seconds

SECRET = "bench-intake-secret-".ljust(43, "x")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url("atom_bench_intake"))
    parser.add_argument("--requests", type=int, default=400, help="timed requests per variant")
    parser.add_argument("--block", type=int, default=25, help="requests per interleaved block")
    parser.add_argument("--json", default=None)
    return parser.parse_args()


@dataclass
class Variant:
    name: str
    patch: Callable[[], contextlib.AbstractContextManager[Any]]
    python_s: float = 0.0
    backend_s: float = 0.0
    count: int = 0
    walls: list[float] = field(default_factory=list)


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    before = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, before)


@contextlib.contextmanager
def combined(*managers: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager())
        yield


def variants() -> list[Variant]:
    from strategies import encryption
    from strategies.pipeline import intake
    from strategies.platforms.generic import auth

    def decrypt() -> contextlib.AbstractContextManager[Any]:
        return patched(auth, "secret_open", encryption.secret_open_uncached)

    def cached() -> contextlib.AbstractContextManager[Any]:
        return patched(auth, "secret_open", encryption.secret_open)

    def orm() -> contextlib.AbstractContextManager[Any]:
        return patched(intake, "_store", intake._store_orm)

    def sql() -> contextlib.AbstractContextManager[Any]:
        return patched(intake, "_store", intake._store_postgresql)

    return [
        Variant("secret: decrypt, store: orm (before)", lambda: combined(decrypt, orm)),
        Variant("secret: cached, store: orm", lambda: combined(cached, orm)),
        Variant("secret: decrypt, store: sql", lambda: combined(decrypt, sql)),
        Variant("secret: cached, store: sql (after)", lambda: combined(cached, sql)),
    ]


_ids = itertools.count(1)


def body(tag: str) -> bytes:
    n = next(_ids)
    items = [
        {
            "product_id": f"P{(n * 7 + i) % 50}",
            "title": f"Product {(n * 7 + i) % 50}",
            "quantity": 1 + i,
            "price": "19.90",
        }
        for i in range(3)
    ]
    data = {
        "aftersale_id": f"AS-{tag}-{n}",
        "buyer_id": f"B{n % 97}",
        "type": "refund_only",
        "reason": "no_longer_needed",
        "amount": "9.90",
        "applied_at": "2026-11-22T10:15:00+08:00",
        "risk_flag": False,
        "order": {
            "order_id": f"OD-{tag}-{n}",
            "status": "shipped",
            "paid_at": "2026-11-20T09:00:00+08:00",
            "shipped_at": "2026-11-21T08:00:00+08:00",
            "received_at": None,
            "tags": [],
            "items": items,
        },
    }
    return json.dumps(data).encode("utf-8")


def environ(shop_code: str, raw: bytes) -> dict[str, Any]:
    from strategies.platforms.generic.signing import signed_headers

    headers = signed_headers(shop_code=shop_code, secret=SECRET, body=raw)
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/aftersales",
        "RAW_URI": "/api/v1/aftersales",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def auth_only(shop_code: str, *, blocks: int, block: int) -> list[tuple[str, int, float]]:
    """The signature check alone, secrets decrypted or remembered: interleaved blocks."""
    from strategies import encryption
    from strategies.platforms.generic import auth

    raw = body("auth")
    env = environ(shop_code, raw)
    call = {
        "shop_code": shop_code,
        "timestamp": env["HTTP_X_ATOM_TIMESTAMP"],
        "signature": env["HTTP_X_ATOM_SIGNATURE"],
        "method": "POST",
        "path": "/api/v1/aftersales",
        "body": raw,
    }
    ways = {"decrypt": encryption.secret_open_uncached, "cached": encryption.secret_open}
    spent = dict.fromkeys(ways, 0.0)
    for _ in range(blocks):
        for name, opener in ways.items():
            with patched(auth, "secret_open", opener):
                auth.shop_for_signed_request(**call)  # untimed: the cache warm
                start = time.process_time()
                for _ in range(block):
                    auth.shop_for_signed_request(**call)
                spent[name] += time.process_time() - start
    calls = blocks * block
    return [(name, calls, spent[name] / calls * 1e6) for name in ways]


def main() -> None:
    args = parse_args()
    setup_django(database_url=args.database_url, broker_url=DEFAULT_BROKER)
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from strategies.models import Shop
    from strategies.pipeline import intake

    shop, _ = Shop.objects.get_or_create(code="bench-intake", defaults={"name": "Bench intake"})
    shop.api_secret = SECRET
    shop.save()
    handler = WSGIHandler()
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def one(env: dict[str, Any]) -> None:
        response = handler(env, start_response)
        b"".join(response)
        response.close()

    run = f"{int(time.time())}"
    chosen = variants()
    with patched(intake, "request_dispatch_on_commit", lambda *a, **k: None):
        for variant in chosen:  # warm up: connections, prepared statements, caches
            with variant.patch():
                for _ in range(20):
                    one(environ(shop.code, body(run)))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        blocks = max(1, args.requests // args.block)
        for _ in range(blocks):
            for variant in chosen:
                envs = [environ(shop.code, body(run)) for _ in range(args.block)]
                with variant.patch():
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_backend_pid()")
                        if cursor.fetchone()[0] != pid:
                            raise SystemExit("the connection changed mid-run: CONN_MAX_AGE?")
                    python0, backend0 = time.process_time(), backend_cpu_seconds(pid)
                    for env in envs:
                        start = time.perf_counter()
                        one(env)
                        variant.walls.append(time.perf_counter() - start)
                    variant.python_s += time.process_time() - python0
                    variant.backend_s += backend_cpu_seconds(pid) - backend0
                    variant.count += len(envs)
        auth_rows = auth_only(shop.code, blocks=blocks, block=args.block * 4)
    refused = [s for s in statuses if not s.startswith("202")]
    if refused:
        raise SystemExit(f"{len(refused)} requests not accepted, e.g. {refused[:3]}")

    rows, results = [], {}
    for v in chosen:
        python_ms = v.python_s / v.count * 1000
        backend_ms = v.backend_s / v.count * 1000
        wall_ms = statistics.median(v.walls) * 1000
        rows.append([v.name, v.count, python_ms, backend_ms, python_ms + backend_ms, wall_ms])
        results[v.name] = {
            "requests": v.count,
            "python_ms": python_ms,
            "postgres_ms": backend_ms,
            "wall_p50_ms": wall_ms,
        }
    print(f"CPU per signed POST /api/v1/aftersales (in process, publish left out, {run})")
    print_table(
        ["variant", "requests", "python ms", "postgres ms", "cpu ms", "wall p50 ms"],
        [[r[0], r[1], *(f"{x:.3f}" for x in r[2:])] for r in rows],
    )
    print()
    print("shop_for_signed_request alone (one shop query, two secrets opened, two HMACs)")
    print_table(["secrets", "calls", "python us"], [[n, c, f"{us:.1f}"] for n, c, us in auth_rows])
    if args.json:
        auth = {name: {"calls": calls, "python_us": us} for name, calls, us in auth_rows}
        write_json("intake", {"variants": results, "auth_only": auth}, args.json)


if __name__ == "__main__":
    main()
