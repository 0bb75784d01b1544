# Pinning a package's default version is audited.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0003_audit_restore_action'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('upload', 'Upload'), ('remove_version', 'Remove Version'), ('default_version', 'Default Version'), ('job_cancel', 'Job Cancel'), ('job_retry', 'Job Retry'), ('cluster_create', 'Cluster Create'), ('cluster_change', 'Cluster Change'), ('cluster_remove', 'Cluster Remove'), ('token_create', 'Token Create'), ('token_revoke', 'Token Revoke'), ('login_failed', 'Login Failed'), ('login_locked_out', 'Login Locked Out'), ('restore', 'Restore')], db_index=True, max_length=32),
        ),
    ]
