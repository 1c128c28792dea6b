from django.db import migrations

PRODUCT_NAME = "Shopbot back office"


def theme(apps, schema_editor):
    Theme = apps.get_model("admin_interface", "Theme")
    active = Theme.objects.filter(active=True).first() or Theme.objects.create(name="Django", active=True)
    active.title = PRODUCT_NAME
    active.title_visible = True
    active.env_visible_in_header = False
    active.language_chooser_active = False
    active.save()


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0001_initial"),
        ("admin_interface", "0032_alter_theme_defaults"),
    ]

    operations = [migrations.RunPython(theme, migrations.RunPython.noop)]
