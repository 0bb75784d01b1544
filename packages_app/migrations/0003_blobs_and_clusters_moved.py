"""Version blobs point at ``blobs.Blob``; clusters now belong to ``access``. No table changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("packages_app", "0002_clusters"),
        ("blobs", "0001_moved_from_ingest"),
        ("access", "0001_moved_in"),
        ("registry_site", "0002_tokens_and_audit_moved_to_access"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name="versionblob",
                name="blob",
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="references",
                                        to="blobs.blob"),
            ),
            migrations.DeleteModel(name="ClusterPackageRule"),
            migrations.DeleteModel(name="Cluster"),
        ]),
    ]
