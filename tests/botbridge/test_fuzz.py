"""Whatever arrives with the right secret, the webhook never answers 5xx (Telegram would
deliver a 5xx again and again): 400 for what is not an update, else stored and 200."""

import copy
import json

import pytest

from botbridge.models import TelegramUpdate
from tests.botbridge.test_webhook import payment_update, pre_checkout_update, text_update

pytestmark = pytest.mark.django_db

ODD_VALUES = [None, 0, -1, 2**70, 1.5, True, "", "x", "=cmd|' /C calc'!A0", "\x00", "\ud800",
              "\U0001f600", [], [1, "a"], {}, {"id": "x"}]  # fmt: skip
ODD_KEYS = ["", "\x00", "a\x00b", "\ud800", "\udfff\ud800", "update_id ", "💳", "k" * 300]


def paths(value, prefix=()):
    """Every path to a value inside an update (objects and arrays alike)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from paths(item, (*prefix, index))


def replaced(update, path, new):
    changed = copy.deepcopy(update)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return changed


@pytest.fixture
def bases(invoiced_order):
    button = text_update(3)
    button["callback_query"] = {
        "id": "cb",
        "from": button["message"]["from"],
        "data": "catalog:2",
        "message": button.pop("message"),
    }
    shipping = {
        "update_id": 4,
        "shipping_query": {
            "id": "sq",
            "from": {"id": 777001, "is_bot": False, "first_name": "Pat"},
            "invoice_payload": "x",
            "shipping_address": {"country_code": "DE", "city": "Berlin"},
        },
    }
    return [
        text_update(1, "/catalog"),
        button,
        pre_checkout_update(5, invoiced_order, query_id="q"),
        payment_update(6, invoiced_order),
        shipping,
    ]


def test_no_update_shape_gets_a_5xx(webhook, bases):
    posted, update_id = [], 1000

    def post(body):
        response = webhook.post_raw(body)
        posted.append((response.status_code, str(body)[:120]))

    for base in bases:
        for path in set(paths(base)) - {("update_id",)}:
            for value in ODD_VALUES:
                update_id += 1
                post(json.dumps({**replaced(base, path, value), "update_id": update_id}))
        for key in ODD_KEYS:
            update_id += 1
            kind = next(k for k in base if k != "update_id")
            body = {**base, "update_id": update_id, kind: {**base[kind], key: key}}
            post(json.dumps(body))
    for depth in (10, 60, 65, 500, 989, 990, 5000):
        update_id += 1
        post(f'{{"update_id": {update_id}, "message": {"[" * depth}{"]" * depth}}}')
        update_id += 1
        nested = '{"a": ' * depth + "1" + "}" * depth
        post(f'{{"update_id": {update_id}, "message": {{"text": {nested}}}}}')
    for constant in ("NaN", "Infinity", "-Infinity"):
        update_id += 1
        post(f'{{"update_id": {update_id}, "message": {{"date": {constant}}}}}')
    for raw in (
        '{"update_id": 1, "message": {"text": "\\ud800"}}',
        '{"\\u0000": 1, "update_id": 2}',
    ):
        post(raw)

    server_errors = [(status, body) for status, body in posted if status >= 500]
    assert server_errors == []
    assert {status for status, _ in posted} <= {200, 400}
    assert len(posted) > 1000
    # Everything answered 200 was stored, and jsonb holds it.
    assert TelegramUpdate.objects.count() == sum(1 for status, _ in posted if status == 200)


def test_odd_characters_are_kept_with_a_replacement_character(webhook):
    raw = '{"update_id": 77, "message": {"text": "a\\ud800b", "x\\u0000y": "\\udfff"}}'
    assert webhook.post_raw(raw).status_code == 200
    payload = TelegramUpdate.objects.get(update_id=77).payload
    assert payload["message"] == {"text": "a\ufffdb", "x\ufffdy": "\ufffd"}
