"""Blob and StorageBackend now belong to ``blobs``, OperationRun to ``operations``. No table changes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0004_storage_migration"),
        ("blobs", "0001_moved_from_ingest"),
        ("operations", "0001_moved_from_ingest"),
        ("packages_app", "0003_blobs_and_clusters_moved"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.DeleteModel(name="Blob"),
            migrations.DeleteModel(name="StorageBackend"),
            migrations.DeleteModel(name="OperationRun"),
        ]),
    ]
