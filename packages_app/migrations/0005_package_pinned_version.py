# An operator may pin a package's default version; release_version is documented as the publication number.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('packages_app', '0004_published_images'),
    ]

    operations = [
        migrations.AddField(
            model_name='package',
            name='pinned_version',
            field=models.CharField(blank=True, help_text="The default version, chosen by an operator over the highest one (when the package's version scheme changed); empty: the highest version is the default. Removing that version clears it.", max_length=255),
        ),
        migrations.AlterField(
            model_name='packageversion',
            name='release_version',
            field=models.PositiveIntegerField(help_text='The publication number: grows with every publication of the package (a replace gets a new one) and is never reused.'),
        ),
    ]
