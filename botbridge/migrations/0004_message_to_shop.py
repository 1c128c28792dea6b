"""The conversation with customers (Message) moves to the shop app, which writes it.

Inbound rows kept a foreign key to the stored update; they now keep Telegram's update_id,
so the shop's table refers to nothing in botbridge. The table itself is handed over in
shop.0003 (renamed, not copied).
"""

from django.db import migrations, models

COPY_UPDATE_IDS = """
UPDATE botbridge_message SET telegram_update_id = (
    SELECT u.update_id FROM botbridge_telegramupdate u WHERE u.id = botbridge_message.update_id
) WHERE update_id IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("botbridge", "0003_update_reply"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="telegram_update_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunSQL(COPY_UPDATE_IDS, migrations.RunSQL.noop),
        migrations.RemoveField(model_name="message", name="update"),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Message")],
        ),
    ]
