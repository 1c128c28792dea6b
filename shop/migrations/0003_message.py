"""Message (the conversation with customers and the outbox) now belongs to the shop.

The table botbridge created is taken over as it is and renamed, with its indexes.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0002_admin_theme"),
        ("botbridge", "0004_message_to_shop"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Message",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("chat_id", models.BigIntegerField()),
                        ("direction", models.CharField(choices=[("in", "From the customer"), ("out", "To the customer")], max_length=3)),
                        ("method", models.CharField(default="sendMessage", max_length=32)),
                        ("text", models.TextField(blank=True)),
                        ("params", models.JSONField(blank=True, default=dict)),
                        ("status", models.CharField(choices=[("received", "Received"), ("queued", "Queued"), ("sending", "Sending"), ("sent", "Sent"), ("failed", "Failed")], max_length=16)),
                        ("dedupe_key", models.CharField(blank=True, max_length=128, null=True, unique=True)),
                        ("telegram_message_id", models.BigIntegerField(blank=True, null=True)),
                        ("telegram_update_id", models.BigIntegerField(blank=True, null=True)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("error", models.TextField(blank=True)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("customer", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="messages", to="shop.customer")),
                        ("order", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="messages", to="shop.order")),
                    ],
                    options={
                        "ordering": ["created_at", "id"],
                        "db_table": "botbridge_message",
                        "indexes": [
                            models.Index(fields=["customer", "created_at"], name="botbridge_message_transcript"),
                            models.Index(condition=models.Q(("direction", "out"), models.Q(("status", "sent"), _negated=True)), fields=["status", "created_at"], name="botbridge_message_outbox"),
                        ],
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="message", table=None),
        migrations.RenameIndex(model_name="message", new_name="shop_message_transcript", old_name="botbridge_message_transcript"),
        migrations.RenameIndex(model_name="message", new_name="shop_message_outbox", old_name="botbridge_message_outbox"),
    ]
