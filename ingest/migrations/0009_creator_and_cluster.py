# Who created a job or an upload session, and for which cluster (access.principals decides what each caller reaches).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0002_login_audit_actions'),
        ('ingest', '0008_job_outcome'),
    ]

    operations = [
        migrations.AddField(
            model_name='ingestjob',
            name='cluster',
            field=models.ForeignKey(blank=True, help_text="The cluster of the token that uploaded the bundle: only that cluster's tokens see the job, and it publishes only what the cluster may see.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='access.cluster'),
        ),
        migrations.AddField(
            model_name='ingestjob',
            name='created_by',
            field=models.CharField(blank=True, help_text='Who uploaded the bundle, as the audit log names the caller: token:<name> (<key id>) or user:<name>.', max_length=255),
        ),
        migrations.AddField(
            model_name='uploadsession',
            name='cluster',
            field=models.ForeignKey(blank=True, help_text='The cluster of the token that opened the upload.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='access.cluster'),
        ),
        migrations.AddField(
            model_name='uploadsession',
            name='created_by',
            field=models.CharField(blank=True, help_text='Who opened the upload, the only caller (with unrestricted admins) that may use it.', max_length=255),
        ),
    ]
