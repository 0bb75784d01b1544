from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported here, as Django documents for signal receivers: they need the models loaded.
        from . import logins

        logins.connect()
