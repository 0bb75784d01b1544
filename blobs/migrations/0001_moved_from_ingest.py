"""Blob and StorageBackend move here from ``ingest``: their tables stay as they are, only Django's state moves."""

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
                name="Blob",
                fields=[
                    ("digest", models.CharField(help_text="sha256:<hex>", max_length=71, primary_key=True, serialize=False)),
                    ("size", models.BigIntegerField()),
                    ("media_type", models.CharField(blank=True, max_length=255)),
                    ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ],
                options={"db_table": "ingest_blob", "ordering": ["-created_at"]},
            ),
            migrations.CreateModel(
                name="StorageBackend",
                fields=[
                    ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                    ("kind", models.CharField(max_length=16)),
                    ("identity", models.CharField(help_text="Kind and location, without credentials.", max_length=1024)),
                    ("locked_at", models.DateTimeField(auto_now_add=True)),
                    ("url", models.CharField(blank=True, help_text="STORAGE_URL of the backend, once a migration set it.", max_length=1024)),
                    ("migrating_to", models.CharField(blank=True, help_text="Identity of the backend a storage migration is about to switch to.", max_length=1024)),
                ],
                options={"db_table": "ingest_storagebackend"},
            ),
        ]),
        move_content_types("ingest", "blobs", ["blob", "storagebackend"]),
    ]
