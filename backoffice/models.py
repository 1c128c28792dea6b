from django.db import models


class Backup(models.Model):
    """One backup: a database dump and the media that matter, in one file with a checksum.

    The file carries its own manifest (row counts, ledger sums per currency) and a
    `.sha256` beside it, so it can be verified and restored when this table is gone too.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        DELETED = "deleted", "Removed by retention"

    name = models.CharField(max_length=200, unique=True, help_text="The file in backup storage.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    size = models.PositiveBigIntegerField(default=0, help_text="Bytes.")
    sha256 = models.CharField(max_length=64, blank=True)
    database = models.CharField(max_length=16, help_text="postgresql or sqlite")
    counts = models.JSONField(default=dict, help_text="Rows per table when it was taken.")
    ledger_sums = models.JSONField(default=dict, help_text="The ledger's sum per currency.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(
        null=True, blank=True, help_text="Read back whole and its checksum matched."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("run_golive_check", "Can see the go-live check")]

    def __str__(self) -> str:
        return self.name
