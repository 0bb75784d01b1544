from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0003_operation_run'),
    ]

    operations = [
        migrations.AddField(
            model_name='storagebackend',
            name='url',
            field=models.CharField(blank=True, help_text='STORAGE_URL of the backend, once a migration set it.', max_length=1024),
        ),
        migrations.AddField(
            model_name='storagebackend',
            name='migrating_to',
            field=models.CharField(blank=True, help_text='Identity of the backend a storage migration is about to switch to.', max_length=1024),
        ),
    ]
