from django.db import migrations


def no_logo(apps, schema_editor):
    """The theme's default logo is Django's: staff see the back office's name instead."""
    Theme = apps.get_model("admin_interface", "Theme")
    Theme.objects.filter(active=True).update(logo_visible=False)


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0005_shipping_options_translations"),
        ("admin_interface", "0032_alter_theme_defaults"),
    ]

    operations = [migrations.RunPython(no_logo, migrations.RunPython.noop)]
