"""Clusters and their package rules as the clusters API reads and writes them."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from .clusters import save_cluster
from .models import Cluster, ClusterPackageRule


class ClusterRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = ClusterPackageRule
        fields = ["package_name", "versions"]


class ClusterSerializer(serializers.ModelSerializer):
    """A cluster and its allow-list; writing ``rules`` replaces the whole list."""

    repo_url = serializers.SerializerMethodField(help_text="What `dcos package repo add` takes for this cluster.")
    rules = ClusterRuleSerializer(many=True, required=False)

    class Meta:
        model = Cluster
        fields = ["name", "description", "dcos_version", "sees_all_packages", "rules", "repo_url", "created_at",
                  "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def get_repo_url(self, cluster: Cluster) -> str:
        return reverse("cluster-repo", kwargs={"name": cluster.name}, request=self.context.get("request"))

    def validate_rules(self, rules: list[dict]) -> list[dict]:
        names = [rule["package_name"] for rule in rules]
        if duplicates := sorted({name for name in names if names.count(name) > 1}):
            raise serializers.ValidationError(f"One rule per package: {', '.join(duplicates)} appear more than once.")
        return rules

    # The view saves with ``actor=``: who makes the change, for the audit log.
    def create(self, validated_data: dict) -> Cluster:
        actor = validated_data.pop("actor")
        return save_cluster(Cluster(), validated_data, actor)

    def update(self, cluster: Cluster, validated_data: dict) -> Cluster:
        actor = validated_data.pop("actor")
        return save_cluster(cluster, validated_data, actor)
