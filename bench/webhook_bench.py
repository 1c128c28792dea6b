"""Webhook benchmark: pre-checkout answer latency and updates per second, beside a no-op view.

gunicorn serves the app on PostgreSQL (a scratch database, `shopbot_bench`), with Redis as the
Celery broker; no worker or dispatcher runs, as the webhook's own cost is what is measured.
The local Telegram stands by for any call the bot makes. wrk drives the load:

- `noop`: POST the same kind of body to /healthz/, a Django view that does nothing;
- `updates`: text messages (/help) from 200 customers, each a new update_id, through
  /telegram/webhook/ (stored for the worker: what the webhook does for commands and text);
- `checkout`: pre_checkout_query updates for 2,000 invoiced orders, each decided in the request
  (order locked, checked, stock reserved once) and answered in the webhook's response
  (answerPreCheckoutQuery), which is what Telegram waits on.

Each is run `--runs` times, interleaved, and the median is reported. Run: make bench-webhook
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from botbridge.sandbox.server import FakeTelegram  # noqa: E402

PORT = 8099
TOKEN = "123456:bench-token"
SECRET = "bench-secret"
DATABASE = "shopbot_bench"
LUA = Path(__file__).with_name("webhook.lua")


def run(cmd, env, **kwargs):
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, **kwargs)


def recreate_database(env):
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    run([sys.executable, "manage.py", "migrate", "-v0"], env)


SEED = """
from shop.models import Product, Order
from shop import services
from shop.payload import payload_sign
product = Product.objects.create(sku="bench", title="Bench coins", description="Coins.", kind="topup", price=500, currency="USD")
lines = []
for n in range({orders}):
    customer = services.customer_upsert_from_telegram(telegram_id=950000 + n % 200, first_name="Bench")
    order = services.order_create(customer=customer, product=product)
    services.order_transition(order=order, to_status=Order.Status.INVOICED)
    lines.append(f"{{customer.telegram_id}} {{payload_sign(order.reference)}} {{order.total_amount}}")
open("{path}", "w").write("\\n".join(lines) + "\\n")
"""


def settle():
    """Vacuum what the last mode inserted, so no autovacuum starts in the middle of the next.

    Each mode adds up to ~100,000 stored updates; PostgreSQL's autovacuum would otherwise take
    a share of the two cores during whichever measurement came next.
    """
    import psycopg

    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:5432/{DATABASE}", autocommit=True
    ) as conn:
        conn.execute("VACUUM (ANALYZE) botbridge_telegramupdate")
        conn.execute("VACUUM (ANALYZE) shop_order")
        for _ in range(100):
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            ).fetchone()[0]
            if not busy:
                return
            time.sleep(0.2)


def wrk(mode, args, offset, payloads, connections):
    path = "/healthz/" if mode == "noop" else "/telegram/webhook/"
    cmd = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{args.duration}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{PORT}{path}",
        "--",
        str(offset),
        mode,
        payloads,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: _ms(re.search(rf"\s{p}%\s+([\d.]+\w+)", out).group(1)) for p in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def _ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4, help="as web in docker-compose.yml")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn gthread threads")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument(
        "--modes", default="noop,updates,checkout,checkout_light", help="comma-separated subset"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    fake = FakeTelegram(TOKEN, accept_unknown_queries=True, record_calls=False)
    fake.serve()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake.url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_PROVIDER_TOKEN": "bench:provider",
        "LOG_LEVEL": "WARNING",
    }
    recreate_database(env)
    workdir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    payloads = workdir / "payloads.txt"
    run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            SEED.format(orders=args.orders, path=payloads),
        ],
        env,
    )

    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(args.workers),
            *(["--threads", str(args.threads)] if args.threads > 1 else []),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz/", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.2)
        modes = args.modes.split(",")
        results = {mode: [] for mode in modes}
        offset = 1
        # Warm-up, not counted: every gunicorn worker opens its database, Redis and Bot API
        # connections and loads its code before anything is timed.
        for mode in modes:
            kind = "checkout" if mode == "checkout_light" else mode
            warm = argparse.Namespace(**{**vars(args), "duration": 2})
            wrk(kind, warm, offset, str(payloads), args.connections)
            offset += 100_000_000
        for _ in range(args.runs):
            for mode in modes:
                # checkout_light: the same checkout at a light load, the answer time a paying
                # customer sees; the others at Telegram's 40 connections.
                connections = 2 if mode == "checkout_light" else args.connections
                kind = "checkout" if mode == "checkout_light" else mode
                results[mode].append(wrk(kind, args, offset, str(payloads), connections))
                offset += 100_000_000
                # wrk stops with up to 40 requests still queued at gunicorn: let them finish
                # so that the next mode does not start behind them.
                time.sleep(2)
                settle()
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=30)
        fake.stop()

    summary = {
        mode: {
            key: statistics.median(r[key] for r in runs)
            for key in ("rps", "p50_ms", "p99_ms", "non_2xx")
        }
        for mode, runs in results.items()
    }
    print(json.dumps({"summary": summary, "runs": results}, indent=1))
    print()
    print(
        f"machine: {os.cpu_count()} cores; gunicorn {args.workers} sync workers; wrk 2 threads; "
        f"{args.runs} runs x {args.duration}s; median"
    )
    labels = {
        "noop": "no-op view, 40c",
        "updates": "webhook updates, 40c",
        "checkout": "pre-checkout, 40c",
        "checkout_light": "pre-checkout, 2c",
    }
    for mode, figures in summary.items():
        print(
            f"{labels[mode]:22}: {figures['rps']:8.0f}/s  p50 {figures['p50_ms']:.1f} ms  "
            f"p99 {figures['p99_ms']:.1f} ms"
        )
    if "noop" in summary and "updates" in summary:
        # Each run's pair was measured back to back: the ratio per run is robust to the
        # machine's drift between runs; its median is the figure.
        ratios = [
            u["rps"] / n["rps"] for u, n in zip(results["updates"], results["noop"], strict=True)
        ]
        print(
            f"webhook throughput = {statistics.median(ratios):.0%} of the no-op view, median "
            f"of runs {', '.join(f'{r:.0%}' for r in ratios)} (target >= 40%)"
        )
    bad = sum(summary[m]["non_2xx"] for m in summary)
    if bad:
        print(f"WARNING: {bad} non-2xx answers (median per mode)")


if __name__ == "__main__":
    main()
