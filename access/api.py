"""Tokens and the audit log over the API; both need the admin scope."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.urls import path
from django.utils.dateparse import parse_datetime
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from access.clusters import find_cluster
from dcos_bundle.errors import ErrorCode, RegistryError

from . import audit
from .auth import ADMIN, request_actor
from .models import ApiToken, AuditEvent
from .tokens import create_token, find_token, revoke_token


class TokenSerializer(serializers.ModelSerializer):
    cluster = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["key_id", "name", "scope", "cluster", "created_by", "created_at", "expires_at", "last_used_at",
                  "revoked_at"]


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiToken.Scope.values)
    cluster = serializers.CharField(required=False, allow_blank=True, help_text="Bind the token to this cluster.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["created_at", "actor", "action", "target", "cluster", "remote_addr", "details"]


class TokenList(generics.ListCreateAPIView):
    """Tokens (never their secrets); POST creates one and answers its plaintext, once."""

    required_scope = ADMIN
    serializer_class = TokenSerializer
    queryset = ApiToken.objects.select_related("cluster")

    def create(self, request, *args, **kwargs):
        fields = TokenCreateSerializer(data=request.data)
        fields.is_valid(raise_exception=True)
        data = fields.validated_data
        cluster = find_cluster(data["cluster"]) if data.get("cluster") else None
        token, plaintext = create_token(data["name"], data["scope"], cluster, actor=request_actor(request),
                                        expires_at=data.get("expires_at"))
        body = {**TokenSerializer(token).data, "token": plaintext}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetail(generics.RetrieveDestroyAPIView):
    """One token; DELETE revokes it at once (it stays listed, with its revocation time)."""

    required_scope = ADMIN
    serializer_class = TokenSerializer

    def get_object(self):
        return find_token(self.kwargs["key_id"])

    def destroy(self, request, *args, **kwargs):
        token = revoke_token(self.get_object(), request_actor(request))
        return Response(TokenSerializer(token).data)


class AuditList(generics.ListAPIView):
    """The audit log, newest first; ``?since=`` (ISO 8601) and ``?action=`` filter; ``?export=csv`` exports."""

    required_scope = ADMIN
    serializer_class = AuditEventSerializer

    def get_queryset(self):
        events = AuditEvent.objects.all()
        if since := self.request.query_params.get("since"):
            moment = parse_datetime(since)
            if moment is None:
                raise RegistryError(ErrorCode.INVALID_REQUEST, f"since={since!r} is not an ISO 8601 date and time.")
            events = events.filter(created_at__gte=moment)
        if action := self.request.query_params.get("action"):
            events = events.filter(action=action)
        return events

    def list(self, request, *args, **kwargs):
        if request.query_params.get("export") == "csv":
            response = StreamingHttpResponse(audit.export_csv(self.get_queryset().iterator()),
                                             content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="audit.csv"'
            return response
        return super().list(request, *args, **kwargs)


urlpatterns = [
    path("tokens/", TokenList.as_view(), name="token-list"),
    path("tokens/<str:key_id>/", TokenDetail.as_view(), name="token-detail"),
    path("audit/", AuditList.as_view(), name="audit-list"),
]
