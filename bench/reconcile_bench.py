"""Reconciliation benchmark (issue 13): Telegram Stars and an A-Pay statement, at scale.

Scratch database `shopbot_bench_reconcile` (created afresh), filled by SQL, not timed:
100,000 Stars payments and 1,000,000 A-Pay payments (one customer per 1,000 payments, paid
one after the other over the last 30 days). The local Telegram runs in this process with
100,000 Stars transactions, one per Stars payment; A-Pay statements of 100,000 and 1,000,000
rows (one per A-Pay payment, the first N by time, each with A-Pay's 3% fee) are written to
files.

Measured, each as its own `manage.py` process (wall time, and peak RSS from wait4), `--runs`
times with the reconciliation's own tables emptied before each first run, medians reported:

- Stars, first run: `reconcile_stars` pages 100,000 transactions (1,000 calls), stores them,
  matches them to the payments, reads the balance, finds the differences (none).
- Stars, second run: the same command again: it changes nothing.
- Statement, first import: `import_provider_statement apay FILE`: checks every line, imports,
  matches by order_id, posts one fee entry per row, finds the differences (none).
- Statement, the same rows again in another file (another hash): it changes nothing.
- Statement, the same file again: recognised by its hash; changes nothing.

After each second run the script checks that nothing changed (rows, ledger entries,
differences). Targets: Stars under 60 s, the statement under 90 s, peak memory under 200 MB
and flat from 100k to 1M rows; a second run changes nothing and takes less time.
Run: make bench-reconcile
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "shopbot_bench_reconcile"
DSN = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
TOKEN = "200000:bench-token"
STARS = 100_000
APAY = 1_000_000
SPAN_SECONDS = 30 * 24 * 3600


def env(telegram_url: str = "") -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "LOG_LEVEL": "WARNING",
        "TIME_ZONE": "UTC",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_SANDBOX": "true",
        "TELEGRAM_API_URL": telegram_url or "http://127.0.0.1:9",
        "RECONCILE_HORIZON_SECONDS": "0",
    }


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env(), check=True)


# Linux keeps a process's peak RSS across exec, so a command started straight from this
# process (which holds the local Telegram's 100,000 transactions) would report this
# process's size. A small launcher starts it instead and reports the command's own peak.
_LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(process.pid, 0)
print(f"PEAK_KB {usage.ru_maxrss} STATUS {status}", file=sys.stderr)
"""


def timed(*args: str, telegram_url: str = "") -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, sys.executable, "manage.py", *args], cwd=ROOT,
        env=env(telegram_url), capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    last = done.stderr.strip().splitlines()[-1]
    peak_kb, status = int(last.split()[1]), int(last.split()[3])
    if status != 0 or done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({status}): {done.stdout} {done.stderr}")
    return {"seconds": seconds, "peak_mb": peak_kb / 1024, "out": done.stdout.strip()[-300:]}


def sql(statement: str, params=None):
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


def setup() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    manage("migrate", "-v0")
    sql(
        "INSERT INTO shop_customer (telegram_id, username, first_name, last_name, language_code,"
        " terms_version, is_blocked, is_flagged, flag_reason, has_blocked_bot, created_at,"
        " updated_at)"
        " SELECT 7000000000 + i, '', 'Bench', '', 'en', '', false, false, '', false, now(), now()"
        " FROM generate_series(0, %s) i",
        [(STARS + APAY) // 1000],
    )
    first = sql("SELECT min(id) FROM shop_customer")[0][0]
    payment = (
        "INSERT INTO payments_payment (customer_id, telegram_payment_charge_id,"
        " provider_payment_charge_id, provider, mode, amount, currency, refunded_amount,"
        " review_reason, paid_at, credited_at, raw, created_at)"
        " SELECT {first} + i / 1000, {charge}, {order_id}, %s, 'live', {amount}, %s, 0, '',"
        " now() - interval '30 days' + (i * %s) * interval '1 second', now(), '{{}}', now()"
        " FROM generate_series(0, %s - 1) i"
    )
    sql(payment.format(first=first, charge="'stars-bench-' || i", order_id="''",
                       amount="1 + i %% 500"), ["stars", "XTR", SPAN_SECONDS / STARS, STARS])  # fmt: skip
    sql(payment.format(first=first + STARS // 1000, charge="'tg-bench-' || i",
                       order_id="lpad(to_hex(i), 16, '0')", amount="100 + i %% 100000"),
        ["apay", "USD", SPAN_SECONDS / APAY, APAY])  # fmt: skip
    sql("VACUUM ANALYZE")


def statement_file(rows: int, directory: Path, *, variant: str = "") -> Path:
    """A-Pay's CSV for the first `rows` A-Pay payments, as A-Pay would write it."""
    path = directory / f"apay-{rows}{variant}.csv"
    copy = (
        "COPY (SELECT 900000000 + row_number() OVER (ORDER BY paid_at, id) AS transaction_id,"
        " provider_payment_charge_id AS order_id, '' AS custom_transaction_id,"
        " customer_id AS custom_user_id, to_char(amount / 100.0, 'FM9999999990.00') AS amount,"
        " to_char((amount - amount * 3 / 100) / 100.0, 'FM9999999990.00')"
        " AS amount_after_commision, currency, 'Success' AS status,"
        " to_char(paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        " AS created_at, '' AS updated_at, '' AS activated_at"
        " FROM payments_payment WHERE provider = 'apay' ORDER BY paid_at, id LIMIT %s)"
        " TO STDOUT WITH (FORMAT csv, DELIMITER ';', HEADER)"
    )
    import psycopg

    with psycopg.connect(DSN) as conn, conn.cursor() as cur, open(path, "wb") as out:
        with cur.copy(copy.replace("%s", str(rows))) as data:
            for block in data:
                out.write(block)
        if variant:
            out.write(b"\n")  # the same rows; another file
    return path


def reset_stars() -> None:
    sql("DELETE FROM payments_difference WHERE provider = 'stars'")
    sql("DELETE FROM payments_ledgerentry WHERE kind = 'provider'")
    sql("DELETE FROM payments_startransaction")
    sql("DELETE FROM payments_starbalancesnapshot")


def reset_statement() -> None:
    sql("DELETE FROM payments_difference WHERE provider = 'apay'")
    sql("DELETE FROM payments_ledgerentry WHERE kind = 'fee'")
    sql("DELETE FROM payments_statementrow")
    sql("DELETE FROM payments_statementimport")
    sql("VACUUM ANALYZE payments_ledgerentry")


def state() -> list:
    return sql(
        "SELECT (SELECT count(*) FROM payments_startransaction),"
        " (SELECT count(*) FROM payments_statementrow),"
        " (SELECT count(*) FROM payments_ledgerentry),"
        " (SELECT count(*) FROM payments_difference),"
        " (SELECT count(*) FROM payments_difference WHERE status = 'open')"
    )[0]


def fake_telegram():
    from botbridge.sandbox.server import FakeTelegram

    fake = FakeTelegram(TOKEN, record_calls=False)
    start = int(time.time()) - 30 * 24 * 3600
    for i in range(STARS):
        fake.state.star_transactions.append({
            "id": f"stars-bench-{i}", "amount": 1 + i % 500, "date": start + i * 25,
            "source": {"type": "user", "transaction_type": "invoice_payment",
                       "user": {"id": 7000000000 + i // 1000, "is_bot": False,
                                "first_name": "Bench"}, "invoice_payload": ""},
        })  # fmt: skip
    fake.serve()
    return fake


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key]["seconds"] for r in runs)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-setup", action="store_true")
    args = parser.parse_args()
    if not args.skip_setup:
        setup()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DATABASE_URL"] = env()["DATABASE_URL"]
    import django

    django.setup()
    fake = fake_telegram()
    results: dict = {"stars": [], "statement": {}}
    for _ in range(args.runs):
        reset_stars()
        first = timed("reconcile_stars", telegram_url=fake.url)
        after_first = state()
        second = timed("reconcile_stars", telegram_url=fake.url)
        assert state() == after_first, (after_first, state())
        results["stars"].append({"first": first, "second": second, "state": after_first})
    with tempfile.TemporaryDirectory() as directory:
        for rows in (100_000, APAY):
            path = statement_file(rows, Path(directory))
            other = statement_file(rows, Path(directory), variant="-again")
            runs = []
            for _ in range(args.runs):
                reset_statement()
                first = timed("import_provider_statement", "apay", str(path))
                after_first = state()
                overlap = timed("import_provider_statement", "apay", str(other))
                same = timed("import_provider_statement", "apay", str(path))
                assert state() == after_first, (after_first, state())
                runs.append({"first": first, "overlap": overlap, "same": same,
                             "state": after_first})  # fmt: skip
            results["statement"][rows] = runs
    fake.stop()
    print(json.dumps(results, indent=1, default=str))
    print(f"machine: {os.cpu_count()} cores; {args.runs} runs; median (peak memory: max)")
    stars = results["stars"]
    print(
        f"Stars, {STARS:,} transactions: first run {median(stars, 'first'):.1f} s, "
        f"second {median(stars, 'second'):.1f} s (target < 60 s); peak memory "
        f"{max(r['first']['peak_mb'] for r in stars):.0f} MB; state after: {stars[0]['state']}"
    )
    for rows, runs in results["statement"].items():
        peak = max(r[k]["peak_mb"] for r in runs for k in ("first", "overlap", "same"))
        print(
            f"Statement, {rows:>9,} rows: first import {median(runs, 'first'):.1f} s, same rows "
            f"in another file {median(runs, 'overlap'):.1f} s, same file {median(runs, 'same'):.1f}"
            f" s (target < 90 s); peak memory {peak:.0f} MB (target < 200 MB, flat)"
        )


if __name__ == "__main__":
    main()
