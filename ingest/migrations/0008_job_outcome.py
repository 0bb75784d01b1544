# What a succeeded job did to the catalogue: published, replaced or unchanged (null until then).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0007_job_internal_cause'),
    ]

    operations = [
        migrations.AddField(
            model_name='ingestjob',
            name='outcome',
            field=models.CharField(blank=True, choices=[('published', 'Published'), ('replaced', 'Replaced'), ('unchanged', 'Unchanged')], help_text='What the job did to the catalogue, once it succeeded.', max_length=16, null=True),
        ),
    ]
