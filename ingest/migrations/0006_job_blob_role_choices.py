# The role of a claimed blob is one of the bundle format's roles (no table change).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0005_blobs_and_runs_moved'),
    ]

    operations = [
        migrations.AlterField(
            model_name='jobblob',
            name='role',
            field=models.CharField(choices=[('asset', 'Asset file'), ('manifest', 'Image manifest or index'), ('config', 'Image config'), ('layer', 'Image layer')], max_length=16),
        ),
    ]
