"""The evidence pack for a dispute: everything the provider asks for, in one ZIP.

summary.txt for a person to read, evidence.json with the same facts for machines, and
transcript.csv with every message between the shop and the customer.
"""

import csv
import io
import json
import zipfile
from datetime import UTC

from django.conf import settings

from core import money
from payments.csvtext import safe_text
from payments.models import Dispute
from shop.models import DigitalItem, Message


def _iso(value) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def evidence_facts(dispute: Dispute) -> dict:
    payment = dispute.payment
    customer = payment.customer
    order = dispute.order
    facts = {
        "dispute": {
            "id": dispute.pk,
            "reason": dispute.get_reason_display(),
            "amount": money.format_amount(dispute.amount, dispute.currency),
            "provider_reference": dispute.provider_reference,
            "opened_at": _iso(dispute.opened_at),
            "evidence_due_by": _iso(dispute.evidence_due_by),
        },
        "payment": {
            "telegram_payment_charge_id": payment.telegram_payment_charge_id,
            "provider_payment_charge_id": payment.provider_payment_charge_id,
            "provider": payment.get_provider_display(),
            "amount": money.format_amount(payment.amount, payment.currency),
            "amount_minor": payment.amount,
            "currency": payment.currency,
            "paid_at": _iso(payment.paid_at),
            "refunded": money.format_amount(payment.refunded_amount, payment.currency),
        },
        "customer": {
            "telegram_id": customer.telegram_id,
            "username": customer.username,
            "name": f"{customer.first_name} {customer.last_name}".strip(),
            "language_code": customer.language_code,
            "terms_version": customer.terms_version,
            "terms_accepted_at": _iso(customer.terms_accepted_at),
        },
        "order": None,
        "delivery": [],
    }
    if order is not None:
        facts["order"] = {
            "reference": order.reference,
            "status": order.status,
            "created_at": _iso(order.created_at),
            "total": order.total_display,
            "shipping_address": order.shipping_address,
            "items": [
                {
                    "sku": item.sku,
                    "title": item.title,
                    "kind": item.kind,
                    "quantity": item.quantity,
                    "unit_price": money.format_amount(item.unit_price, item.currency),
                }
                for item in order.items.all()
            ],
        }
        delivered = DigitalItem.objects.filter(order_item__order=order).order_by("pk")
        facts["delivery"] = [
            {
                "what": "digital item handed out",
                "at": _iso(unit.delivered_at),
                "sku": unit.product.sku,
            }
            for unit in delivered.select_related("product")
        ] + [
            {"what": event.message, "at": _iso(event.created_at), "status": event.to_status}
            for event in order.events.filter(to_status__in=["fulfilled", "awaiting_shipment"])
        ]
    return facts


def _transcript(dispute: Dispute) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time_utc", "direction", "status", "text"])
    messages = Message.objects.filter(customer_id=dispute.payment.customer_id).order_by(
        "created_at", "id"
    )
    for message in messages.iterator(chunk_size=500):
        # Customer text is the customer's: a spreadsheet must not run it as a formula.
        writer.writerow(
            [_iso(message.created_at), message.direction, message.status, safe_text(message.text)]
        )
    return out.getvalue()


def _summary(facts: dict) -> str:
    lines = [f"{settings.PRODUCT_NAME} — evidence for dispute #{facts['dispute']['id']}", ""]
    for section in ("dispute", "payment", "customer", "order"):
        body = facts[section]
        if not body:
            continue
        lines.append(section.upper())
        for key, value in body.items():
            if key == "items":
                for item in value:
                    lines.append(
                        f"  item: {item['quantity']} × {item['title']} ({item['sku']}, "
                        f"{item['kind']}) at {item['unit_price']}"
                    )
            else:
                lines.append(f"  {key}: {value}")
        lines.append("")
    lines.append("DELIVERY")
    lines += [f"  {d['at']}: {d['what']}" for d in facts["delivery"]] or ["  (none recorded)"]
    lines += ["", "The full message transcript is in transcript.csv."]
    return "\n".join(lines) + "\n"


def evidence_pack(dispute: Dispute) -> tuple[str, bytes]:
    """(file name, ZIP bytes)."""
    facts = evidence_facts(dispute)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as pack:
        pack.writestr("summary.txt", _summary(facts))
        pack.writestr("evidence.json", json.dumps(facts, indent=2, ensure_ascii=False))
        pack.writestr("transcript.csv", _transcript(dispute))
    return f"dispute-{dispute.pk}-evidence.zip", buffer.getvalue()
