# The cause of a failure inside the registry, kept for operators apart from what the API shows.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0006_job_blob_role_choices'),
    ]

    operations = [
        migrations.AddField(
            model_name='ingestjob',
            name='internal_cause',
            field=models.TextField(blank=True, help_text='What failed inside the registry, for its operators (the admin); the API never shows it.'),
        ),
    ]
