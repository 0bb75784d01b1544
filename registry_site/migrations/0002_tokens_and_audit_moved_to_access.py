"""ApiToken and AuditEvent now belong to ``access``; their tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("registry_site", "0001_tokens_and_audit"),
        ("access", "0001_moved_in"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.DeleteModel(name="ApiToken"),
            migrations.DeleteModel(name="AuditEvent"),
        ]),
    ]
