"""Worker benchmarks (issue 4): credits per second for one worker process, and the outbox
holding Telegram's 30 messages per second.

credits: `--payments` paid orders are recorded (each publishes its credit task to Redis, no
worker running yet); then one worker process (`--pool solo`, the default queue) is started
and credits them end to end: payment locked, ledger posted, order fulfilled, receipt queued
(an outbox row and its send task). The rate is payments / (last credited_at − first
credited_at), so the worker's start-up is not counted.

outbox: `--messages` messages to as many customers are queued; one worker on the `telegram`
queue (4 pool processes) sends them to the local Telegram with the production limits (30/s
in all, 1/s per chat). Reported: the rate over the run and the busiest one-second window.

Each is run `--runs` times on a fresh scratch database (`shopbot_bench_worker`); medians.
Run: make bench-worker
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from botbridge.sandbox.server import FakeTelegram  # noqa: E402

TOKEN = "123456:bench-token"
DATABASE = "shopbot_bench_worker"
BROKER = "redis://127.0.0.1:6379/12"


def env_for(fake) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": BROKER,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake.url,
        "TELEGRAM_WEBHOOK_SECRET": "bench",
        "TELEGRAM_PROVIDER_TOKEN": "bench:provider",
        "LOG_LEVEL": "WARNING",
    }


def fresh_database(env) -> None:
    import psycopg
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def shell(env, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


SEED_PAYMENTS = """
from shop.models import Product, Order
from shop import services
from payments.services import payment_record
product = Product.objects.create(sku="coins", title="Coins", description="Coins.", kind="topup", price=500, currency="USD")
customers = [services.customer_upsert_from_telegram(telegram_id=970000 + n, first_name="Bench") for n in range(200)]
for n in range({count}):
    customer = customers[n % 200]
    order = services.order_create(customer=customer, product=product)
    services.order_transition(order=order, to_status=Order.Status.INVOICED)
    payment_record(customer=customer, order=order, telegram_payment_charge_id=f"b-{{n}}", provider_payment_charge_id="", amount=500, currency="USD", raw={{}})
print("seeded")
"""

# Progress is read with plain SQL: starting Django every second would eat the worker's CPU.
CREDIT_PROGRESS = """
SELECT count(*), coalesce(extract(epoch FROM max(credited_at) - min(credited_at)), 0)
FROM payments_payment WHERE credited_at IS NOT NULL
"""

SEED_MESSAGES = """
from shop import outbox
from shop import services
for n in range({count}):
    customer = services.customer_upsert_from_telegram(telegram_id=980000 + n, first_name="Bench")
    outbox.message_queue(customer=customer, text=f"Bench message {{n}}")
print("seeded")
"""

OUTBOX_PROGRESS = """
SELECT count(*) FILTER (WHERE status = 'sent'),
       coalesce(extract(epoch FROM max(sent_at) - min(sent_at)), 0),
       coalesce((SELECT max(n) FROM (SELECT count(*) AS n FROM shop_message
                 WHERE status = 'sent' GROUP BY date_trunc('second', sent_at)) AS w), 0),
       count(*) FILTER (WHERE status <> 'sent')
FROM shop_message WHERE direction = 'out'
"""


def worker(env, queues: str, pool: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queues,
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            *pool,
        ],
        cwd=ROOT,
        env=env,
    )


def wait_for(sql: str, total: int, timeout: float) -> list:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:5432/{DATABASE}", autocommit=True
    ) as conn:
        while True:
            figures = list(conn.execute(sql).fetchone())
            if figures[0] >= total or time.monotonic() > deadline:
                return figures
            time.sleep(1)


def run_credits(fake, count: int) -> dict:
    env = env_for(fake)
    fresh_database(env)
    for n in range(200):
        fake._user({"id": 970000 + n})
    shell(env, SEED_PAYMENTS.format(count=count))
    process = worker(env, "default", ["--pool", "solo"])
    try:
        done, seconds = wait_for(CREDIT_PROGRESS, count, timeout=600)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "credited": int(done),
        "seconds": float(seconds),
        "per_second": int(done) / float(seconds),
    }


def run_outbox(fake, count: int) -> dict:
    env = env_for(fake)
    fresh_database(env)
    for n in range(count):
        fake._user({"id": 980000 + n})
    shell(env, SEED_MESSAGES.format(count=count))
    process = worker(env, "telegram", ["--concurrency", "4"])
    try:
        sent, seconds, busiest, unsent = wait_for(OUTBOX_PROGRESS, count, timeout=600)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "sent": int(sent),
        "seconds": float(seconds),
        "per_second": int(sent) / float(seconds),
        "busiest_second": int(busiest),
        "unsent": int(unsent),
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--modes", default="credits,outbox")
    args = parser.parse_args()
    fake = FakeTelegram(TOKEN, accept_unknown_queries=True, record_calls=False)
    fake.serve()
    results: dict[str, list[dict]] = {}
    try:
        for _ in range(args.runs):
            if "credits" in args.modes:
                results.setdefault("credits", []).append(run_credits(fake, args.payments))
            if "outbox" in args.modes:
                results.setdefault("outbox", []).append(run_outbox(fake, args.messages))
    finally:
        fake.stop()
    print(json.dumps(results, indent=1))
    print(f"machine: {os.cpu_count()} cores; {args.runs} runs; median")
    if "credits" in results:
        rate = statistics.median(r["per_second"] for r in results["credits"])
        print(f"credits, one worker process : {rate:7.0f} credits/s (target >= 300)")
    if "outbox" in results:
        rate = statistics.median(r["per_second"] for r in results["outbox"])
        busiest = max(r["busiest_second"] for r in results["outbox"])
        print(
            f"outbox, Telegram limits      : {rate:7.1f} msg/s, busiest second {busiest} (limit 30)"
        )


if __name__ == "__main__":
    main()
