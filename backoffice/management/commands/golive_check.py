from django.core.management.base import BaseCommand, CommandError

from backoffice import golive

MARK = {golive.OK: "ok     ", golive.WARNING: "WARNING", golive.FAILURE: "FAILURE"}


class Command(BaseCommand):
    help = "Is the shop ready to take real money? Exits non-zero on any failure."

    def handle(self, *args, **options):
        items = golive.golive_items()
        for item in items:
            line = f"{MARK[item.state]}  {item.name}: {item.detail}"
            if item.fix and item.state != golive.OK:
                line += f"\n         → {item.fix}"
            self.stdout.write(line)
        failures = [item for item in items if item.state == golive.FAILURE]
        if failures:
            raise CommandError(f"{len(failures)} failure(s): not ready to go live.")
        self.stdout.write(self.style.SUCCESS("Ready to go live."))
