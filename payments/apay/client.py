"""A-Pay's HTTP APIs as the back office uses them: deposit-info and the Reports API.

The merchant API takes the `apikey` header and `project_id` on every `/Remotes/*` call; the
Reports API takes a Bearer token and lives on its own host (both are settings: A-Pay gives
them per merchant). Errors come as `{"success": false, "message": ..., "code": ...}`; unknown
fields are ignored. Amounts are JSON numbers in major units, read as decimals (never floats)
and turned into minor units with Telegram's currency table.
"""

import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

from core import money, secrets
from core.errors import DomainError

logger = logging.getLogger(__name__)

MAX_REPORT_DAYS = 31  # A-Pay refuses a longer window
REPORT_COLUMNS = ["transaction_id", "order_id", "custom_transaction_id", "custom_user_id",
                  "amount", "amount_after_commision", "currency", "status", "created_at",
                  "updated_at", "activated_at"]  # fmt: skip


class APayError(DomainError):
    code = "apay"


@dataclass(frozen=True)
class DepositInfo:
    order_id: str
    status: str
    amount: int | None  # minor units; None when the currency is not in Telegram's table
    currency: str
    created_at: str
    payment_system: str
    raw: dict[str, Any]


def configured() -> bool:
    return bool(settings.APAY_API_URL and settings.APAY_API_KEY and settings.APAY_PROJECT_ID)


def reports_configured() -> bool:
    return bool(settings.APAY_REPORTS_URL and settings.APAY_REPORTS_TOKEN)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json(parse_float=Decimal)
    except ValueError:
        body = {}
    if response.status_code >= 400 or body.get("success") is False:
        message = body.get("message") or response.reason or "error"
        raise APayError(
            f"A-Pay answered {response.status_code}: {secrets.mask(str(message))}",
            code="apay_refused",
        )
    return body


def _call(method: str, url: str, **kwargs) -> requests.Response:
    try:
        return requests.request(method, url, timeout=settings.APAY_TIMEOUT_SECONDS, **kwargs)
    except requests.RequestException as error:
        raise APayError(
            f"A-Pay could not be reached: {secrets.mask(str(error))}", code="apay_unreachable"
        ) from error


def deposit_info(*, order_id: str) -> DepositInfo:
    """GET /Remotes/deposit-info: A-Pay's own record of a deposit."""
    if not configured():
        raise APayError(
            "A-Pay's API is not configured (APAY_API_URL, APAY_API_KEY, APAY_PROJECT_ID).",
            code="apay_not_configured",
        )
    if not order_id:
        raise APayError("This payment has no A-Pay order id to look up.", code="no_order_id")
    response = _call(
        "GET",
        f"{settings.APAY_API_URL.rstrip('/')}/Remotes/deposit-info",
        headers={"apikey": settings.APAY_API_KEY},
        params={"project_id": settings.APAY_PROJECT_ID, "order_id": order_id},
    )
    body = _json(response)
    currency = str(body.get("currency") or "").upper()
    amount = None
    if body.get("amount") is not None and money.is_known_currency(currency):
        amount = int(Decimal(str(body["amount"])).scaleb(money.exponent(currency)))
    return DepositInfo(
        order_id=str(body.get("order_id") or order_id),
        status=str(body.get("status") or ""),
        amount=amount,
        currency=currency,
        created_at=str(body.get("created_at") or ""),
        payment_system=str(body.get("payment_system") or ""),
        raw={k: str(v) for k, v in body.items()},
    )


def report_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into windows of at most 31 days."""
    if end <= start:
        raise APayError("The end is before the start.", code="bad_range")
    windows, at = [], start
    while at < end:
        upto = min(end, at + timedelta(days=MAX_REPORT_DAYS))
        windows.append((at, upto))
        at = upto
    return windows


def report_download(*, start: datetime, end: datetime) -> Path:
    """One deposits report for [start, end) (at most 31 days): create, wait, download.

    The CSV is written to a temporary file, which the caller removes.
    """
    if not reports_configured():
        raise APayError(
            "A-Pay's Reports API is not configured (APAY_REPORTS_URL, APAY_REPORTS_TOKEN).",
            code="apay_not_configured",
        )
    base = settings.APAY_REPORTS_URL.rstrip("/")
    auth = {"Authorization": f"Bearer {settings.APAY_REPORTS_TOKEN}"}
    body = {
        "filters": {"create_at": {"from": start.isoformat(), "to": end.isoformat()}},
        "type": "in",
        "format": "csv",
        "columns": REPORT_COLUMNS,
    }
    task = _json(_call("POST", f"{base}/reports/create", json=body, headers=auth))
    task_id = task.get("task_id") or task.get("id")
    if not task_id:
        raise APayError("A-Pay did not give a report task id.", code="apay_no_task")
    deadline = time.monotonic() + settings.APAY_REPORT_TIMEOUT_SECONDS
    while True:
        status = _json(_call("GET", f"{base}/reports/status/{task_id}", headers=auth))
        state = str(status.get("status", ""))
        if state == "completed":
            break
        if state in ("failed", "expired", "cancelled"):
            raise APayError(f"A-Pay's report {task_id} {state}.", code="apay_report_failed")
        if time.monotonic() > deadline:
            raise APayError(f"A-Pay's report {task_id} was not ready in time.", code="apay_slow")
        time.sleep(settings.APAY_REPORT_POLL_SECONDS)
    file_id = status.get("file_id") or task_id
    response = _call("GET", f"{base}/reports/download/{file_id}", headers=auth, stream=True)
    if response.status_code >= 400:
        _json(response)
    handle = tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False)  # noqa: SIM115
    with handle:
        for block in response.iter_content(1 << 16):
            handle.write(block)
    return Path(handle.name)
