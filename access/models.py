"""Who the registry serves and who may use it: clusters and their package rules, API tokens, and the audit log."""

from django.db import models

from .validators import validate_dcos_version, validate_version_patterns


class Cluster(models.Model):
    """A DC/OS cluster this registry serves, with its own repository of what it may see."""

    name = models.SlugField(max_length=63, unique=True, help_text="Names its repository: /clusters/<name>/repo.")
    description = models.TextField(blank=True)
    dcos_version = models.CharField(
        max_length=32, blank=True, validators=[validate_dcos_version],
        help_text="The cluster's DC/OS version (e.g. 2.2). When set, it decides which packages and which repository "
                  "version the cluster gets, whatever its Cosmos reports.",
    )
    sees_all_packages = models.BooleanField(
        default=True, help_text="Off: the cluster sees only the packages its rules allow.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "packages_app_cluster"  # the table predates this app
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ClusterPackageRule(models.Model):
    """One package a cluster on an allow-list may see, optionally only some of its versions."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="rules")
    package_name = models.CharField(max_length=255)
    versions = models.CharField(
        max_length=1024, blank=True, validators=[validate_version_patterns],
        help_text="Comma-separated version patterns (e.g. 2.3.0, 2.4.*); empty: every version.",
    )

    class Meta:
        db_table = "packages_app_clusterpackagerule"
        ordering = ["package_name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "package_name"], name="unique_cluster_package_rule"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}: {self.package_name} {self.versions or '*'}"


class ApiToken(models.Model):
    """A bearer token: stored as a hash, shown once at creation, with a scope and optionally one cluster."""

    class Scope(models.TextChoices):
        READ = "read", "read: the catalogue, repositories, files and images"
        WRITE = "write", "write: read, plus uploads, removals, clusters, job cancel and retry"
        ADMIN = "admin", "admin: write, plus tokens and the audit log"

    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'ci upload' or 'cluster prod'.")
    key_id = models.CharField(max_length=16, unique=True, help_text="The token's public part: names it in logs.")
    secret_hash = models.CharField(max_length=64, help_text="sha256 of the secret part; the secret is never stored.")
    scope = models.CharField(max_length=8, choices=Scope.choices)
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens",
        help_text="A cluster's token sees only that cluster's packages.",
    )
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "registry_site_apitoken"  # the table predates this app
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


class AuditEvent(models.Model):
    """One change someone made: who, what, when, from where."""

    class Action(models.TextChoices):
        UPLOAD = "upload"
        REMOVE_VERSION = "remove_version"
        DEFAULT_VERSION = "default_version"
        JOB_CANCEL = "job_cancel"
        JOB_RETRY = "job_retry"
        CLUSTER_CREATE = "cluster_create"
        CLUSTER_CHANGE = "cluster_change"
        CLUSTER_REMOVE = "cluster_remove"
        TOKEN_CREATE = "token_create"
        TOKEN_REVOKE = "token_revoke"
        LOGIN_FAILED = "login_failed"
        LOGIN_LOCKED_OUT = "login_locked_out"
        RESTORE = "restore"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=255, help_text="token:<name> (<key id>), user:<username> or anonymous.")
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    target = models.CharField(max_length=1024, blank=True)
    details = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    cluster = models.CharField(max_length=63, blank=True, help_text="The cluster the actor acted for, if any.")

    class Meta:
        db_table = "registry_site_auditevent"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
