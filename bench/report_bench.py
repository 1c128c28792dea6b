"""Report benchmark (issue 5): the `payments` export beside PostgreSQL's own COPY of the same
rows, in the same run, with peak memory, at 100k and 1M payments.

The scratch database `shopbot_bench_report` is filled by `load_demo --orders N` (bulk, paid
and credited orders over the last 90 days), first to 100,000 then topped up to 1,000,000.
At each size, `--runs` times, interleaved:

- export: `manage.py export_csv payments --since <90 days ago> --until <today>` to /dev/null,
  as its own process; wall time and its peak RSS (wait4's ru_maxrss);
- COPY: `COPY (SELECT … the same columns, joins, range and order …) TO STDOUT WITH CSV`
  read by psycopg and thrown away; wall time.

Medians are reported. Targets: export within 3× COPY's time; peak memory under 150 MB and flat
from 100k to 1M. Run: make bench-report
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "shopbot_bench_report"
DSN = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"

COPY = """
COPY (
  SELECT p.id, p.paid_at, p.provider, p.telegram_payment_charge_id,
         p.provider_payment_charge_id, o.reference, c.telegram_id, p.currency, p.amount,
         p.amount / 100.0, p.refunded_amount, p.refunded_amount / 100.0, p.review_reason,
         p.credited_at
  FROM payments_payment p
  LEFT JOIN shop_order o ON o.id = p.order_id
  JOIN shop_customer c ON c.id = p.customer_id
  WHERE p.paid_at >= %(since)s AND p.paid_at < %(until)s
  ORDER BY p.paid_at, p.id
) TO STDOUT WITH CSV HEADER
"""


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "LOG_LEVEL": "WARNING",
        "TIME_ZONE": "UTC",
    }


def manage(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env(), check=True, **kwargs
    )


def ensure_database(rows: int) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    manage("migrate", "-v0")
    manage("load_demo", "--orders", str(rows))
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def export_once(since: date, until: date) -> dict:
    start = time.perf_counter()
    with open(os.devnull, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "export_csv", "payments", "--since", since.isoformat(),
             "--until", until.isoformat(), "--tz", "UTC"],
            cwd=ROOT, env=env(), stdout=sink,
        )  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"export_csv failed with status {status}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}


def copy_once(since: date, until: date) -> dict:
    import psycopg

    start = time.perf_counter()
    size = 0
    bounds = {"since": since, "until": until + timedelta(days=1)}
    with psycopg.connect(DSN) as conn, conn.cursor() as cursor, cursor.copy(COPY, bounds) as copy:
        for block in copy:
            size += len(block)
    return {"seconds": time.perf_counter() - start, "bytes": size}


def count_rows(since: date, until: date) -> int:
    import psycopg

    with psycopg.connect(DSN) as conn:
        return conn.execute(
            "SELECT count(*) FROM payments_payment WHERE paid_at >= %s AND paid_at < %s",
            [since, until + timedelta(days=1)],
        ).fetchone()[0]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    until = date.today() + timedelta(days=1)
    since = until - timedelta(days=100)
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        ensure_database(size)
        rows = count_rows(since, until)
        runs = []
        for _ in range(args.runs):
            runs.append({"export": export_once(since, until), "copy": copy_once(since, until)})
        export_s = statistics.median(r["export"]["seconds"] for r in runs)
        copy_s = statistics.median(r["copy"]["seconds"] for r in runs)
        peak = max(r["export"]["peak_mb"] for r in runs)
        results[size] = {"rows": rows, "export_s": export_s, "copy_s": copy_s,
                         "ratio": export_s / copy_s, "peak_mb": peak, "runs": runs}  # fmt: skip
    print(json.dumps(results, indent=1))
    print(f"machine: {os.cpu_count()} cores; {args.runs} runs; median (peak memory: max)")
    for r in results.values():
        print(
            f"{r['rows']:>9,} payments: export {r['export_s']:6.2f} s, COPY {r['copy_s']:6.2f} s "
            f"({r['ratio']:.2f}x; target <= 3x), export peak memory {r['peak_mb']:.0f} MB "
            f"(target < 150 MB, flat)"
        )


if __name__ == "__main__":
    main()
