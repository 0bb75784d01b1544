"""The Marathon deployment (helm-free-marathon/) and the Dockerfile: rendered definitions are valid
Marathon apps and groups, and agree with the registry and with each other."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from tests.corpus import CORPUS_DIR

ROOT = Path(__file__).resolve().parents[2]
MARATHON_DIR = ROOT / "helm-free-marathon"
RENDER = MARATHON_DIR / "render.py"
SAMPLE_VALUES = MARATHON_DIR / "values.example.json"
SCHEMA_DIR = CORPUS_DIR / "marathon"
VARIANTS = ("local", "s3")
# Env names that hold credentials: only ever a reference to a Marathon secret.
SECRET_ENV = {"SECRET_KEY", "DATABASE_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD"}
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]*@")
SANDBOX = "/mnt/mesos/sandbox"


def run_render(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RENDER), *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """Each variant rendered from the sample values: variant -> output directory."""
    outputs = {}
    for variant in VARIANTS:
        out = tmp_path_factory.mktemp(variant)
        result = run_render("--variant", variant, "--values", str(SAMPLE_VALUES), "--out", str(out))
        assert result.returncode == 0, result.stderr
        outputs[variant] = out
    return outputs


def group_of(rendered, variant) -> dict:
    return json.loads((rendered[variant] / f"registry-{variant}.json").read_text())


def apps_of(rendered, variant) -> dict[str, dict]:
    return {app["id"]: app for app in group_of(rendered, variant)["apps"]}


def registry_apps(rendered, variant) -> list[dict]:
    """The apps that run the registry's image (not PostgreSQL or Redis)."""
    image = json.loads(SAMPLE_VALUES.read_text())["image"]
    return [app for app in apps_of(rendered, variant).values() if app["container"]["docker"]["image"] == image]


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft4Validator]:
    """Marathon's schemas; the Group's "./AppDefinition.json" resolves against the Group's id."""
    group_schema = json.loads((SCHEMA_DIR / "Group.json").read_text())
    app_schema = json.loads((SCHEMA_DIR / "AppDefinition.json").read_text())
    app_uri = group_schema["id"].rsplit("/", 1)[0] + "/AppDefinition.json"
    registry = Registry().with_resource(app_uri, DRAFT4.create_resource(app_schema))
    return {"app": Draft4Validator(app_schema), "group": Draft4Validator(group_schema, registry=registry)}


def schema_errors(validator: Draft4Validator, document: dict) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_app_and_the_group_follow_marathons_schemas(rendered, validators, variant):
    app_files = sorted((rendered[variant] / "apps").glob("*.json"))
    assert {json.loads(path.read_text())["id"] for path in app_files} == set(apps_of(rendered, variant))
    for path in app_files:
        assert schema_errors(validators["app"], json.loads(path.read_text())) == [], path.name
    assert schema_errors(validators["group"], group_of(rendered, variant)) == []


def test_the_schemas_reject_what_marathon_rejects(rendered, validators):
    """The apps inside a group are checked against AppDefinition.json through its $ref."""
    group = group_of(rendered, "s3")
    web = next(app for app in group["apps"] if app["id"] == "/registry/web")
    web["args"] = ["python"]  # cmd and args together
    web["instances"] = "2"
    errors = schema_errors(validators["group"], group)
    assert any(error.startswith("apps/2/instances") for error in errors), errors
    assert any(error.startswith("apps/2:") for error in errors), errors
    assert schema_errors(validators["app"], {"id": "/registry/Web", "cmd": "x"})


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_check_names_a_port_the_app_has(rendered, variant):
    for app in apps_of(rendered, variant).values():
        ports = app.get("container", {}).get("portMappings") or app.get("portDefinitions") or []
        names = [port.get("name") for port in ports]
        assert all(names) and len(set(names)) == len(names), app["id"]
        for check in app.get("healthChecks", []):
            assert check["portIndex"] < len(ports), app["id"]
        for check in app.get("readinessChecks", []):
            assert check["portName"] in names, app["id"]
        if "DCOS_SERVICE_PORT_INDEX" in app.get("labels", {}):
            assert int(app["labels"]["DCOS_SERVICE_PORT_INDEX"]) < len(ports)


def documented_settings() -> set[str]:
    """Names in the README's settings table (first column)."""
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def names_read_by_code() -> str:
    return "".join(path.read_text() for package in ("registry_site", "ingest", "packages_app")
                   for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_env_name_is_a_setting_the_registry_reads(rendered, variant):
    documented, code = documented_settings(), names_read_by_code()
    assert {"STORAGE_URL", "CELERY_WORKER_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"} <= documented
    for app in registry_apps(rendered, variant):
        for name in app["env"]:
            assert name in documented, f"{app['id']}: {name} is not in the README's settings table"
            assert f'"{name}"' in code, f"{app['id']}: no code reads {name}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_are_only_marathon_secret_references(rendered, variant):
    for app in apps_of(rendered, variant).values():
        env, secrets = app.get("env", {}), app.get("secrets", {})
        for name, value in env.items():
            if name in SECRET_ENV:
                assert isinstance(value, dict) and value["secret"] in secrets, f"{app['id']}: {name}"
            else:
                assert isinstance(value, str) and not CREDENTIALS_IN_URL.search(value), f"{app['id']}: {name}"
        referenced = {value["secret"] for value in env.values() if isinstance(value, dict)}
        assert referenced == set(secrets), f"{app['id']}: declared and used secrets differ"
        sample = json.loads(SAMPLE_VALUES.read_text())
        assert {secret["source"] for secret in secrets.values()} <= {
            value for name, value in sample.items() if name.endswith("_secret")
        }
    for template in MARATHON_DIR.glob("*/*.json"):
        assert not CREDENTIALS_IN_URL.search(template.read_text()), template


def test_web_worker_and_beat_run_the_commands_of_the_run_command(rendered):
    apps = apps_of(rendered, "s3")
    web, worker, beat = apps["/registry/web"], apps["/registry/worker"], apps["/registry/beat"]
    # The web task is the run command's web server alone: nginx in front of gunicorn, after the migrations.
    assert web["cmd"].endswith(" && python manage.py migrate --no-input && exec python manage.py runregistry "
                               "--web-only --front nginx")
    assert " -m celery --app registry_site worker " in worker["cmd"] and "--beat" not in worker["cmd"]
    assert " -m celery --app registry_site beat " in beat["cmd"]
    assert beat["instances"] == 1
    assert beat["upgradeStrategy"] == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}  # never two beats
    assert sum("beat" in app.get("cmd", "") for app in apps.values()) == 1


def test_the_local_variant_runs_web_and_worker_in_one_task_on_its_volume(rendered):
    web = apps_of(rendered, "local")["/registry/web"]
    assert web["cmd"].endswith("python manage.py migrate --no-input && exec python manage.py runregistry --front nginx")
    assert web["instances"] == 1
    (volume,) = web["container"]["volumes"]
    mount = f"{SANDBOX}/{volume['containerPath']}/"
    assert volume["persistent"]["size"] == json.loads(SAMPLE_VALUES.read_text())["data_volume_mib"]
    assert web["env"]["STORAGE_URL"].startswith(f"file://{mount}")
    assert web["env"]["STAGING_DIR"].startswith(mount)


def test_the_s3_variant_shares_settings_and_no_file_system_between_web_and_workers(rendered):
    apps = apps_of(rendered, "s3")
    web, worker = apps["/registry/web"], apps["/registry/worker"]
    for name in ("STORAGE_URL", "DATABASE_URL", "CELERY_BROKER_URL", "S3_ENDPOINT_URL",
                 "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "SECRET_KEY", "PUBLIC_BASE_URL"):
        assert web["env"][name] == worker["env"][name], name
    assert web["secrets"] == worker["secrets"]
    assert web["env"]["STORAGE_URL"].startswith("s3://")
    # Uploads are staged in the bucket: no shared directory, no host path, any agent runs any task.
    for app in (web, worker):
        assert app["container"].get("volumes", []) == []
        assert "STAGING_DIR" not in app["env"]
    assert worker["env"]["WORKER_METRICS_PORT"] == str(worker["container"]["portMappings"][0]["containerPort"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_web_streams_uploads_through_admin_router_and_is_checked(rendered, variant):
    web = apps_of(rendered, variant)["/registry/web"]
    assert web["labels"]["DCOS_SERVICE_REQUEST_BUFFERING"] == "false"
    assert [(check["protocol"], check["path"]) for check in web["healthChecks"]] == [("MESOS_HTTP", "/health")]
    assert [check["path"] for check in web["readinessChecks"]] == ["/health/ready"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_dependencies_name_apps_of_the_group_without_cycles(rendered, variant):
    apps = apps_of(rendered, variant)
    for app in apps.values():
        assert set(app.get("dependencies", [])) <= set(apps) - {app["id"]}, app["id"]
    started: list[str] = []
    while len(started) < len(apps):
        ready = [app_id for app_id, app in apps.items()
                 if app_id not in started and set(app.get("dependencies", [])) <= set(started)]
        assert ready, f"dependency cycle among {set(apps) - set(started)}"
        started += ready
    assert started.index("/registry/web") > started.index("/registry/postgres")


@pytest.mark.parametrize("variant", VARIANTS)
def test_apps_with_local_volumes_are_single_and_stop_before_they_start(rendered, variant):
    for app in apps_of(rendered, variant).values():
        if any("persistent" in volume for volume in app.get("container", {}).get("volumes", [])):
            assert app["instances"] == 1, app["id"]
            assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}, app["id"]


# render.py


def test_set_flags_win_over_the_values_file_and_numbers_stay_numbers(tmp_path):
    result = run_render("--variant", "s3", "--values", str(SAMPLE_VALUES), "--set", "worker_instances=5",
                        "--set", "worker_concurrency=8", "--set", "worker_cpus=1.5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    worker = json.loads((tmp_path / "apps" / "worker.json").read_text())
    assert (worker["instances"], worker["cpus"]) == (5, 1.5)
    assert worker["env"]["CELERY_WORKER_CONCURRENCY"] == "8"
    assert "{{" not in (tmp_path / "registry-s3.json").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "web_instanse=2"], "Unknown placeholder(s): web_instanse."),
        (["--set", "public_host=x"], "Unknown placeholder(s): public_host; derived from other values."),
        (["--set", "web_instances=two"], "web_instances='two': expected a whole number."),
        (["--set", "web_cpus=0"], "web_cpus='0': expected a positive number."),
        (["--set", "storage_url=s3://key:secret@bucket"], "expected an s3://bucket/prefix URL without credentials"),
        (["--set", "public_url=registry.example.com"], "public_url='registry.example.com': expected an http(s)://"),
        (["--set", "image"], "--set 'image': expected name=value."),
    ],
)
def test_render_refuses_bad_values_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = run_render("--variant", "s3", "--values", str(SAMPLE_VALUES), *args, "--out", str(out))
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()


def test_render_names_every_missing_value_of_the_variant(tmp_path):
    values = {name: value for name, value in json.loads(SAMPLE_VALUES.read_text()).items()
              if name not in ("storage_url", "image", "data_volume_mib")}
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values))
    result = run_render("--variant", "s3", "--values", str(values_file), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Missing value(s) for the s3 variant: image (" in result.stderr
    assert "storage_url (" in result.stderr and "data_volume_mib" not in result.stderr  # not used by s3
    result = run_render("--variant", "local", "--values", str(values_file), "--out", str(tmp_path / "out"))
    assert "Missing value(s) for the local variant: data_volume_mib (" in result.stderr


def test_render_refuses_a_values_file_that_is_not_an_object(tmp_path):
    values_file = tmp_path / "values.json"
    values_file.write_text("[1]")
    result = run_render("--variant", "local", "--values", str(values_file), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "expected a JSON object" in result.stderr


def test_render_refuses_a_template_with_an_undeclared_placeholder(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("marathon_render", RENDER)
    render = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, render)  # its dataclasses look their module up
    spec.loader.exec_module(render)
    template = tmp_path / "group.json"
    template.write_text(json.dumps({"id": "/registry", "apps": [{"id": "/registry/x", "cmd": "{{nope}} {{image}}"}]}))
    monkeypatch.setitem(render.GROUPS, "s3", template)
    with pytest.raises(render.RenderError, match=r"undeclared placeholder\(s\): nope\."):
        render.render("s3", {"image": "x"})
    template.write_text(json.dumps({"id": "/registry", "apps": [{"id": "/registry/x", "cmd": "{{ image }}"}]}))
    with pytest.raises(render.RenderError, match="Malformed placeholder"):
        render.render("s3", {"image": "x"})


# Dockerfile (not built here: no registry is reachable; its rules are checked instead)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_builds_in_two_stages_and_runs_as_a_user():
    instructions = dockerfile_instructions()
    froms = [argument for keyword, argument in instructions if keyword == "FROM"]
    assert froms == ["python:3.11-slim AS build", "python:3.11-slim AS runtime"]
    runtime_start = [keyword for keyword, _ in instructions].index("FROM", 1)
    build, runtime = instructions[:runtime_start], instructions[runtime_start:]
    assert ("COPY", "requirements.txt /tmp/requirements.txt") in build
    assert any(keyword == "RUN" and "pip install --no-deps --requirement /tmp/requirements.txt" in argument
               for keyword, argument in build)
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    assert any(keyword == "RUN" and "manage.py collectstatic --no-input" in argument for keyword, argument in runtime)
    keywords = [keyword for keyword, _ in runtime]
    users = [argument for keyword, argument in runtime if keyword == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert all(keywords.index(keyword) > last_user for keyword in ("CMD", "ENTRYPOINT") if keyword in keywords)
    assert ("EXPOSE", "8000 9100") in runtime
    assert json.loads(dict(runtime)["CMD"]) == ["python", "manage.py", "runregistry", "--web-only", "--front", "nginx"]
    # The run command's nginx, from Debian's packages.
    assert any(keyword == "RUN" and "apt-get install --yes --no-install-recommends nginx" in argument
               for keyword, argument in runtime)


def test_the_dockerfile_carries_no_secret_and_fetches_no_url():
    instructions = dockerfile_instructions()
    for keyword, argument in instructions:
        assert not (keyword == "ADD" and re.search(r"\w+://", argument)), argument
        if keyword in ("ENV", "ARG"):
            assert not any(name in argument for name in SECRET_ENV), argument
    # The one key it uses exists only for collectstatic's command line, never as a file in the image.
    assert all("SECRET_KEY" not in argument or argument.startswith("SECRET_KEY=collectstatic-only python manage.py")
               for keyword, argument in instructions if keyword == "RUN")


def test_the_image_holds_every_package_and_the_context_leaves_local_state_out():
    copied = {argument.split()[0] for keyword, argument in dockerfile_instructions()
              if keyword == "COPY" and not argument.startswith("--from")}
    packages = re.search(r'include = \[(.*)\]', (ROOT / "pyproject.toml").read_text())[1]
    assert {name.strip(' "*') for name in packages.split(",")} | {"manage.py", "requirements.txt"} == copied
    assert all((ROOT / name).exists() for name in copied)
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "tests"} <= ignored
