"""Settings come from the environment; with none set, the embedded defaults need nothing installed."""

import json
import stat
import subprocess
import sys

from registry_site.data_dir import SECRET_KEY_FILE, kept_secret_key, prepare
from tests.processes import PROJECT_DIR, manage, registry_env

SHOW = (
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'db': s.DATABASES['default']['ENGINE'], 'db_name': str(s.DATABASES['default']['NAME']),"
    "'db_host': s.DATABASES['default'].get('HOST'), 'broker': s.CELERY_BROKER_URL,"
    "'broker_options': getattr(s, 'CELERY_BROKER_TRANSPORT_OPTIONS', None), 'storage': s.STORAGE_URL,"
    "'s3_endpoint': s.S3_ENDPOINT_URL, 'public': s.PUBLIC_BASE_URL, 'hosts': s.ALLOWED_HOSTS,"
    "'threshold': s.DISK_FREE_THRESHOLD_BYTES, 'secret': s.SECRET_KEY}))"
)


def show_settings(env):
    return json.loads(manage("shell", "--verbosity", "0", "-c", SHOW, env=env).stdout)


def test_embedded_defaults_live_under_the_data_dir(tmp_path):
    data = tmp_path / "data"
    shown = show_settings(registry_env(data))
    assert shown["db"] == "django.db.backends.sqlite3"
    assert shown["db_name"] == str(data / "registry.sqlite3")
    assert shown["broker"] == "filesystem://localhost/"
    assert shown["broker_options"]["data_folder_in"] == str(data / "broker" / "queue")
    assert shown["storage"] == (data / "storage").as_uri()
    assert shown["public"] == "http://127.0.0.1:8000"
    # A secret key is generated once and kept, so sessions survive a restart.
    assert shown["secret"] == (data / "secret_key").read_text()
    assert show_settings(registry_env(data))["secret"] == shown["secret"]
    # The folders every process needs were made at start-up.
    assert all((data / folder).is_dir() for folder in ("static", "broker/queue", "broker/control"))


def test_reading_the_settings_writes_nothing(tmp_path):
    data = tmp_path / "data"
    read = "import registry_site.settings as s; print(repr(s.SECRET_KEY), s.DATA_DIR)"
    result = subprocess.run([sys.executable, "-c", read], cwd=PROJECT_DIR, env=registry_env(data),
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["''", str(data)]
    assert not data.exists()


def test_a_configured_key_is_never_written_and_collectstatic_works_on_a_fresh_directory(tmp_path):
    data = tmp_path / "data"
    # As the Dockerfile runs it while building the image.
    manage("collectstatic", "--no-input", "--verbosity", "0", env=registry_env(data, SECRET_KEY="collectstatic-only"))
    assert (data / "static" / "admin").is_dir()
    assert not (data / SECRET_KEY_FILE).exists()


def test_the_generated_key_is_made_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    prepare()
    key = kept_secret_key(tmp_path / "data")
    assert len(key) >= 50
    prepare()
    assert kept_secret_key(tmp_path / "data") == key
    assert stat.S_IMODE((tmp_path / "data" / SECRET_KEY_FILE).stat().st_mode) == 0o600
    assert [path.name for path in (tmp_path / "data").iterdir()] == [SECRET_KEY_FILE]


def test_production_values_come_from_the_environment(tmp_path):
    shown = show_settings(
        registry_env(
            tmp_path / "data",
            DATABASE_URL="postgres://registry@db.internal:5432/registry",
            CELERY_BROKER_URL="redis://redis.internal:6379/0",
            STORAGE_URL="s3://registry-blobs/prod",
            S3_ENDPOINT_URL="http://minio.internal:9000",
            PUBLIC_BASE_URL="https://registry.example.com/",
            DISK_FREE_THRESHOLD_BYTES="5000000000",
            SECRET_KEY="configured-secret",
        )
    )
    assert shown["db"] == "django.db.backends.postgresql"
    assert (shown["db_name"], shown["db_host"]) == ("registry", "db.internal")
    assert shown["broker"] == "redis://redis.internal:6379/0"
    assert shown["broker_options"]["visibility_timeout"] == 1800
    assert shown["storage"] == "s3://registry-blobs/prod"
    assert shown["s3_endpoint"] == "http://minio.internal:9000"
    assert shown["public"] == "https://registry.example.com"
    assert "registry.example.com" in shown["hosts"]
    assert shown["threshold"] == 5_000_000_000
    assert shown["secret"] == "configured-secret"


def test_a_malformed_number_is_a_clear_error(tmp_path):
    result = manage("check", env=registry_env(tmp_path / "data", DISK_FREE_THRESHOLD_BYTES="lots"), check=False)
    assert result.returncode != 0
    assert "DISK_FREE_THRESHOLD_BYTES='lots': expected a whole number." in result.stderr


def test_metrics_access_and_its_networks_are_checked_at_start(tmp_path):
    for name, value, message in [
        ("METRICS_ACCESS", "closed", "METRICS_ACCESS='closed': expected one of network, token, open."),
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,10.0.0.0/33",
         "METRICS_ALLOWED_NETWORKS: '10.0.0.0/33' is not an IP network such as 10.0.0.0/8 or fd00::/8."),
    ]:
        result = manage("check", env=registry_env(tmp_path / "data", **{name: value}), check=False)
        assert result.returncode != 0 and message in result.stderr, name


def test_a_malformed_yes_or_no_is_a_clear_error(tmp_path):
    result = manage("check", env=registry_env(tmp_path / "data", ANONYMOUS_READS="sometimes"), check=False)
    assert result.returncode != 0
    assert "ANONYMOUS_READS='sometimes' is neither yes nor no" in result.stderr
