"""OperationRun moves here from ``ingest``: its table stays as it is, only Django's state moves."""

from django.db import migrations, models

from blobs.migrations_support import move_content_types


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("ingest", "0004_storage_migration"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name="OperationRun",
                fields=[
                    ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                    ("kind", models.CharField(choices=[("backup", "Backup"), ("restore", "Restore"), ("gc", "Gc"), ("verify", "Verify"), ("migrate_storage", "Migrate Storage")], max_length=32)),
                    ("target", models.CharField(blank=True, help_text="Backup location or storage URL, if any.", max_length=1024)),
                    ("started_at", models.DateTimeField(auto_now_add=True)),
                    ("finished_at", models.DateTimeField(blank=True, null=True)),
                    ("succeeded", models.BooleanField(help_text="Empty while running.", null=True)),
                    ("summary", models.JSONField(blank=True, default=dict, help_text="Counts the run reported, or its error.")),
                ],
                options={
                    "db_table": "ingest_operationrun",
                    "ordering": ["-started_at"],
                    "indexes": [models.Index(fields=["kind", "succeeded", "-finished_at"], name="ingest_oper_kind_b5a3b6_idx")],
                },
            ),
        ]),
        move_content_types("ingest", "operations", ["operationrun"]),
    ]
