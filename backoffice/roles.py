"""Staff roles as Django groups, kept in step with this table after every migrate.

Support: customers, orders, support requests, messages (no refunds, no exports).
Finance: payments, refunds, disputes, ledger, reports (and the orders and customers behind them,
and the Telegram updates, failed payments among them).
Manager: all of it, plus the catalog and replaying failed Telegram updates.
"""

from django.contrib.auth.models import Group, Permission

_SUPPORT = {
    "shop.customer": ["view", "change"],
    "shop.order": ["view", "change"],
    "shop.orderitem": ["view"],
    "shop.orderevent": ["view"],
    "shop.supportrequest": ["view", "change"],
    "shop.product": ["view"],
    "shop.message": ["view", "change"],
    "shop.customerevent": ["view"],
    "botbridge.telegramupdate": ["view"],
    # A customer asking to stop paying: support cancel the renewal (through Telegram).
    "shop.subscription": ["view", "change"],
    "shop.subscriptionevent": ["view"],
    "shop.promocode": ["view"],
}
_FINANCE = {
    "shop.customer": ["view"],
    "shop.order": ["view"],
    "shop.orderitem": ["view"],
    "shop.orderevent": ["view"],
    "shop.customerevent": ["view"],
    "payments.payment": ["view"],
    "payments.refund": ["view", "add", "change"],
    "payments.dispute": ["view", "add", "change"],
    "payments.ledgerentry": ["view"],
    "payments.chargeconflict": ["view", "change"],
    "payments.exportjob": ["view", "add", "export_reports"],
    # Reconciliation: what Telegram and A-Pay recorded, the differences, statement imports.
    "payments.difference": ["view", "change"],
    "payments.startransaction": ["view"],
    "payments.statementimport": ["view", "import_statement"],
    "payments.statementrow": ["view"],
    # What promotions and subscriptions brought in (and cost).
    "shop.promocode": ["view"],
    "shop.promoredemption": ["view"],
    "shop.subscription": ["view"],
    "shop.subscriptionevent": ["view"],
    # Failed updates include failed payments: finance must see them (not replay them).
    "botbridge.telegramupdate": ["view"],
}
_MANAGER_EXTRA = {
    "backoffice.backup": ["view", "run_golive_check"],
    "botbridge.webhookstatus": ["view"],
    # Locked-out logins are visible, and cleared by deleting the attempt; the login log.
    "axes.accessattempt": ["view", "delete"],
    "axes.accesslog": ["view"],
    "axes.accessfailurelog": ["view"],
    # Replaying a failed update runs it again: a manager's decision.
    "botbridge.telegramupdate": ["change"],
    "shop.product": ["view", "add", "change", "delete"],
    "shop.digitalitem": ["view", "add", "change", "delete"],
    "shop.productoption": ["view", "add", "change", "delete"],
    "shop.promocode": ["view", "add", "change", "delete"],
}


def _merge(*tables: dict[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for table in tables:
        for model, actions in table.items():
            merged.setdefault(model, [])
            merged[model] += [a for a in actions if a not in merged[model]]
    return merged


ROLES: dict[str, dict[str, list[str]]] = {
    "Support": _SUPPORT,
    "Finance": _FINANCE,
    "Manager": _merge(_SUPPORT, _FINANCE, _MANAGER_EXTRA),
}


def _codename(model: str, action: str) -> tuple[str, str]:
    app_label, model_name = model.split(".")
    codename = action if "_" in action else f"{action}_{model_name}"
    return app_label, codename


def roles_sync(**kwargs) -> None:
    """Create the groups and give each exactly its permissions (post_migrate).

    Runs after each app's migrations; permissions of apps not migrated yet are simply not
    there yet, and the last run sees them all.
    """
    wanted = {_codename(model, action) for table in ROLES.values() for model in table
              for action in table[model]}  # fmt: skip
    known = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.filter(
            codename__in={codename for _, codename in wanted}
        ).select_related("content_type")
    }
    for name, table in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = [
            known[key]
            for model, actions in table.items()
            for key in (_codename(model, action) for action in actions)
            if key in known
        ]
        group.permissions.set(permissions)
