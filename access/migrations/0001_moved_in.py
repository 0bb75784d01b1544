"""Clusters (from ``packages_app``), tokens and the audit log (from ``registry_site``) move here.

Their tables stay as they are; only Django's state moves.
"""

import django.db.models.deletion
from django.db import migrations, models

import access.validators
from blobs.migrations_support import move_content_types


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("packages_app", "0002_clusters"),
        ("registry_site", "0001_tokens_and_audit"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Cluster',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.SlugField(help_text='Names its repository: /clusters/<name>/repo.', max_length=63, unique=True)),
                    ('description', models.TextField(blank=True)),
                    ('dcos_version', models.CharField(blank=True, help_text="The cluster's DC/OS version (e.g. 2.2). When set, it decides which packages and which repository version the cluster gets, whatever its Cosmos reports.", max_length=32, validators=[access.validators.validate_dcos_version])),
                    ('sees_all_packages', models.BooleanField(default=True, help_text='Off: the cluster sees only the packages its rules allow.')),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('updated_at', models.DateTimeField(auto_now=True)),
                ],
                options={
                    'db_table': 'packages_app_cluster',
                    'ordering': ['name'],
                },
            ),
            migrations.CreateModel(
                name='ClusterPackageRule',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('package_name', models.CharField(max_length=255)),
                    ('versions', models.CharField(blank=True, help_text='Comma-separated version patterns (e.g. 2.3.0, 2.4.*); empty: every version.', max_length=1024, validators=[access.validators.validate_version_patterns])),
                    ('cluster', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rules', to='access.cluster')),
                ],
                options={
                    'db_table': 'packages_app_clusterpackagerule',
                    'ordering': ['package_name'],
                    'constraints': [models.UniqueConstraint(fields=('cluster', 'package_name'), name='unique_cluster_package_rule')],
                },
            ),

            migrations.CreateModel(
                name='AuditEvent',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                    ('actor', models.CharField(help_text='token:<name> (<key id>), user:<username> or anonymous.', max_length=255)),
                    ('action', models.CharField(choices=[('upload', 'Upload'), ('remove_version', 'Remove Version'), ('job_cancel', 'Job Cancel'), ('job_retry', 'Job Retry'), ('cluster_create', 'Cluster Create'), ('cluster_change', 'Cluster Change'), ('cluster_remove', 'Cluster Remove'), ('token_create', 'Token Create'), ('token_revoke', 'Token Revoke')], db_index=True, max_length=32)),
                    ('target', models.CharField(blank=True, max_length=1024)),
                    ('details', models.JSONField(blank=True, default=dict)),
                    ('remote_addr', models.GenericIPAddressField(blank=True, null=True)),
                    ('cluster', models.CharField(blank=True, help_text='The cluster the actor acted for, if any.', max_length=63)),
                ],
                options={
                    'db_table': 'registry_site_auditevent',
                    'ordering': ['-created_at', '-id'],
                },
            ),
            migrations.CreateModel(
                name='ApiToken',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(help_text="What the token is for, e.g. 'ci upload' or 'cluster prod'.", max_length=100)),
                    ('key_id', models.CharField(help_text="The token's public part: names it in logs.", max_length=16, unique=True)),
                    ('secret_hash', models.CharField(help_text='sha256 of the secret part; the secret is never stored.', max_length=64)),
                    ('scope', models.CharField(choices=[('read', 'read: the catalogue, repositories, files and images'), ('write', 'write: read, plus uploads, removals, clusters, job cancel and retry'), ('admin', 'admin: write, plus tokens and the audit log')], max_length=8)),
                    ('created_by', models.CharField(blank=True, max_length=255)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('expires_at', models.DateTimeField(blank=True, null=True)),
                    ('last_used_at', models.DateTimeField(blank=True, null=True)),
                    ('revoked_at', models.DateTimeField(blank=True, null=True)),
                    ('cluster', models.ForeignKey(blank=True, help_text="A cluster's token sees only that cluster's packages.", null=True, on_delete=django.db.models.deletion.CASCADE, related_name='tokens', to='access.cluster')),
                ],
                options={
                    'db_table': 'registry_site_apitoken',
                    'ordering': ['-created_at'],
                },
            ),
        ]),
        move_content_types("packages_app", "access", ["cluster", "clusterpackagerule"]),
        move_content_types("registry_site", "access", ["apitoken", "auditevent"]),
    ]
