"""Helpers for migrations that move a model from one app to another without touching its table."""

from django.db import migrations


def move_content_types(old_app: str, new_app: str, models: list[str]) -> migrations.RunPython:
    """Keep the moved models' content types, so permissions and admin history that point at them survive."""

    def forwards(apps, schema_editor):
        content_types = apps.get_model("contenttypes", "ContentType")
        # A content type Django already created under the new label (e.g. by an earlier run) would collide.
        content_types.objects.filter(app_label=new_app, model__in=models).delete()
        content_types.objects.filter(app_label=old_app, model__in=models).update(app_label=new_app)

    def backwards(apps, schema_editor):
        apps.get_model("contenttypes", "ContentType").objects.filter(
            app_label=new_app, model__in=models).update(app_label=old_app)

    return migrations.RunPython(forwards, backwards)
