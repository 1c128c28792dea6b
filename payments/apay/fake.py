"""The local A-Pay: deposit-info and the Reports API over HTTP on 127.0.0.1, answering as
A-Pay documents them (`../shared/apay/NOTES.md`), for tests, the sandbox and benchmarks.

The local Telegram tells it of every payment it makes in a fiat currency (the deposit
A-Pay would record), with A-Pay's fee taken off (`fee_percent`).
"""

import csv
import io
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from core import money
from payments.reports import major

COLUMNS = ["transaction_id", "order_id", "custom_transaction_id", "custom_user_id", "amount",
           "amount_after_commision", "currency", "status", "created_at", "updated_at",
           "activated_at"]  # fmt: skip


@dataclass
class Deposit:
    transaction_id: str
    order_id: str
    amount: int  # minor units
    currency: str
    status: str = "Success"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    fee: int = 0
    custom_user_id: str = ""


class FakeAPay:
    def __init__(self, *, api_key: str, project_id: str, reports_token: str,
                 fee_percent: Decimal = Decimal("3")):  # fmt: skip
        self.api_key, self.project_id, self.reports_token = api_key, project_id, reports_token
        self.fee_percent = fee_percent
        self.deposits: dict[str, Deposit] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.httpd: ThreadingHTTPServer | None = None

    # --- what A-Pay records ---------------------------------------------------------------

    def deposit_add(self, *, order_id: str, amount: int, currency: str, **extra) -> Deposit:
        fee = int(Decimal(amount) * self.fee_percent / 100)
        deposit = Deposit(
            transaction_id=extra.pop("transaction_id", None) or str(900000000 + next(self._ids)),
            order_id=order_id, amount=amount, currency=currency, fee=fee, **extra,
        )  # fmt: skip
        with self.lock:
            self.deposits[order_id] = deposit
        return deposit

    def on_telegram_payment(self, user: dict[str, Any], payment: dict[str, Any]) -> None:
        """The local Telegram's hook: a fiat payment made through A-Pay."""
        self.deposit_add(
            order_id=payment["provider_payment_charge_id"],
            amount=payment["total_amount"],
            currency=payment["currency"],
            custom_user_id=str(user["id"]),
        )

    def statement_csv(self, start: datetime | None = None, end: datetime | None = None) -> str:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(COLUMNS)
        with self.lock:
            deposits = sorted(self.deposits.values(), key=lambda d: d.created_at)
        for d in deposits:
            if (start and d.created_at < start) or (end and d.created_at >= end):
                continue
            when = d.created_at.isoformat()
            writer.writerow([d.transaction_id, d.order_id, "", d.custom_user_id,
                             major(d.amount, d.currency), major(d.amount - d.fee, d.currency), d.currency, d.status,
                             when, when, when])  # fmt: skip
        return out.getvalue()

    # --- HTTP -----------------------------------------------------------------------------

    def answer(self, method: str, url: str, headers: dict[str, str], body: bytes):
        parsed = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        path = parsed.path.rstrip("/")
        with self.lock:
            self.calls.append(f"{method} {path}")
        if path.startswith("/Remotes/"):
            if headers.get("apikey") != self.api_key or query.get("project_id") != self.project_id:
                return 401, {"success": False, "message": "Unauthorized", "code": 401}
            if path == "/Remotes/deposit-info":
                return self._deposit_info(query)
            return 404, {"success": False, "message": "Not found", "code": 404}
        if path.startswith("/reports/"):
            if headers.get("authorization") != f"Bearer {self.reports_token}":
                return 401, {"success": False, "message": "Unauthorized", "code": 401}
            return self._reports(method, path, body)
        return 404, {"success": False, "message": "Not found", "code": 404}

    def _deposit_info(self, query: dict[str, str]):
        with self.lock:
            deposit = self.deposits.get(query.get("order_id", ""))
        if deposit is None:
            return 404, {"success": False, "message": "Deposit not found", "code": 404}
        exp = money.exponent(deposit.currency)
        # A JSON number in major units, as A-Pay sends it (6008.39).
        return 200, {
            "success": True,
            "status": deposit.status,
            "order_id": deposit.order_id,
            "amount": float(major(deposit.amount, deposit.currency)) if exp else deposit.amount,
            "currency": deposit.currency,
            "payment_system": "telegram",
            "custom_transaction_id": "",
            "custom_user_id": deposit.custom_user_id,
            "created_at": deposit.created_at.isoformat(),
        }

    def _reports(self, method: str, path: str, body: bytes):
        if method == "POST" and path == "/reports/create":
            try:
                request = json.loads(body or b"{}")
                window = request["filters"]["create_at"]
                start = datetime.fromisoformat(window["from"])
                end = datetime.fromisoformat(window["to"])
            except (ValueError, KeyError, TypeError):
                return 422, {"success": False, "message": "Invalid filters", "code": 422}
            if end - start > timedelta(days=31) or end <= start:
                return 422, {"success": False, "message": "Range over 31 days", "code": 422}
            task_id = f"task-{next(self._ids)}"
            with self.lock:
                self.tasks[task_id] = {"start": start, "end": end, "polls": 0}
            return 200, {"success": True, "task_id": task_id}
        if method == "GET" and path.startswith("/reports/status/"):
            task = self.tasks.get(path.rsplit("/", 1)[1])
            if task is None:
                return 404, {"success": False, "message": "Task not found", "code": 404}
            task["polls"] += 1
            if task["polls"] < 2:
                return 200, {"success": True, "status": "processing"}
            return 200, {"success": True, "status": "completed", "file_id": path.rsplit("/", 1)[1]}
        if method == "GET" and path.startswith("/reports/download/"):
            task = self.tasks.get(path.rsplit("/", 1)[1])
            if task is None:
                return 410, {"success": False, "message": "Report expired", "code": 410}
            return 200, self.statement_csv(task["start"], task["end"])
        return 404, {"success": False, "message": "Not found", "code": 404}

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def _do(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = fake.answer(self.command, self.path, headers, body)
                if isinstance(answer, str):
                    data, kind = answer.encode("utf-8"), "text/csv; charset=utf-8"
                else:
                    data, kind = json.dumps(answer).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _do
            do_POST = _do

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.httpd

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
