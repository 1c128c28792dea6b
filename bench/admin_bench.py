"""Admin benchmark (the staff back office issue): the pages and searches staff use, at a
million orders.

The scratch database `shopbot_bench_admin` is filled by `load_demo --orders 1000000` (bulk,
paid and credited orders over the last 90 days, 20,000 customers), migrated and vacuumed.
gunicorn serves the app on it (embedded settings with DEBUG off, 2 sync workers); a client
logs in as the demo manager and asks each page `--runs` times after one warm-up, and the
median time to the whole response is reported next to its target.

Targets: every search under 100 ms; the dashboard under 150 ms; order and payment pages under
100 ms; changelists under 150 ms. Run: make bench-admin
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "shopbot_bench_admin"
PORT = 8097
BASE = f"http://127.0.0.1:{PORT}"
ORDERS = 1_000_000


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
        "TIME_ZONE": "UTC",
    }


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env(), check=True)


def ensure_database(orders: int) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE}")
    manage("migrate", "-v0")
    manage("load_demo", "--orders", str(orders))
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}", autocommit=True) as c:
        c.execute("VACUUM ANALYZE")


def sample_ids() -> dict[str, str]:
    """A benchmark order in the middle of the table, its customer and its payment."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}") as conn:
        row = conn.execute(
            "SELECT o.id, o.reference, c.telegram_id, c.username, p.id,"
            " p.telegram_payment_charge_id, p.provider_payment_charge_id"
            " FROM shop_order o JOIN shop_customer c ON c.id = o.customer_id"
            " JOIN payments_payment p ON p.order_id = o.id"
            " WHERE o.reference = 'B0500000'"
        ).fetchone()
    keys = ["order", "reference", "telegram_id", "username", "payment", "charge", "apay"]
    return dict(zip(keys, map(str, row), strict=True))


def pages(ids: dict[str, str]) -> list[tuple[str, str, float, str]]:
    """(what, path, target in ms, text the page must show)."""
    return [
        ("dashboard", "/admin/", 150, "Waiting for someone"),
        ("orders list", "/admin/shop/order/", 150, "Select order"),
        ("order search: reference", f"/admin/shop/order/?q={ids['reference']}", 100, ids["reference"]),
        ("order search: Telegram id", f"/admin/shop/order/?q={ids['telegram_id']}", 100, ids["reference"]),
        ("order search: @username", f"/admin/shop/order/?q=%40{ids['username']}", 100, ids["reference"]),
        ("order search: Telegram charge id", f"/admin/shop/order/?q={ids['charge']}", 100, ids["reference"]),
        ("order search: A-Pay charge id", f"/admin/shop/order/?q={ids['apay']}", 100, ids["reference"]),
        ("order page", f"/admin/shop/order/{ids['order']}/change/", 100, ids["reference"]),
        ("payments list", "/admin/payments/payment/", 150, "Select payment"),
        ("payment search: Telegram charge id", f"/admin/payments/payment/?q={ids['charge']}", 100, ids["charge"]),
        ("payment search: A-Pay charge id", f"/admin/payments/payment/?q={ids['apay']}", 100, ids["charge"]),
        ("payment search: reference", f"/admin/payments/payment/?q={ids['reference']}", 100, ids["charge"]),
        ("payment page", f"/admin/payments/payment/{ids['payment']}/change/", 100, ids["charge"]),
        ("customer search: Telegram id", f"/admin/shop/customer/?q={ids['telegram_id']}", 100, ids["username"]),
        ("customer search: username", f"/admin/shop/customer/?q={ids['username']}", 100, ids["username"]),
        ("customers list", "/admin/shop/customer/", 150, "Select customer"),
        ("ledger list", "/admin/payments/ledgerentry/", 150, "Select ledger entry"),
        ("order events list", "/admin/shop/orderevent/", 150, "Select order event"),
        ("refunds list", "/admin/payments/refund/", 150, "Select refund"),
        ("disputes list", "/admin/payments/dispute/", 150, "Select dispute"),
        ("messages list", "/admin/shop/message/", 150, "Select message"),
    ]  # fmt: skip


def login(session) -> None:
    page = session.get(f"{BASE}/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{BASE}/admin/login/?next=/admin/",
        data={"username": "manager", "password": "manager", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{BASE}/admin/login/"},
    )
    if "Log out" not in response.text and "log out" not in response.text.lower():
        raise RuntimeError("could not log in as the demo manager")


def main() -> None:
    import requests

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-load", action="store_true", help="Use the database as it is.")
    args = parser.parse_args()
    if not args.skip_load:
        ensure_database(args.orders)
    ids = sample_ids()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi:application", "--bind",
         f"127.0.0.1:{PORT}", "--workers", "2", "--log-level", "warning"],
        cwd=ROOT, env=env(),
    )  # fmt: skip
    try:
        session = requests.Session()
        for _ in range(50):
            try:
                session.get(f"{BASE}/healthz/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        login(session)
        results = []
        for what, path, target, expect in pages(ids):
            session.get(BASE + path)  # warm-up, not counted
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                response = session.get(BASE + path)
                times.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200 or expect not in response.text:
                    raise RuntimeError(
                        f"{what}: {response.status_code}, {expect!r} not on the page"
                    )
            results.append((what, statistics.median(times), target))
        print(f"\n{args.orders:,} orders, median of {args.runs} runs (ms):\n")
        print("| page | median ms | target ms | |\n|---|---:|---:|---|")
        for what, median, target in results:
            print(f"| {what} | {median:.1f} | {target} | {'ok' if median < target else 'SLOW'} |")
        slow = [what for what, median, target in results if median >= target]
        print("\nAll under target." if not slow else f"\nOver target: {', '.join(slow)}")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
