"""POST /api/token/: a username and password for the user's API token. A sign-in like the
login page's, so django-axes counts its failures and locks it out the same way."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.login_protection import LOCKED_OUT_STATUS, lockout_message
from annotate.services.accounts import api_token_for

ErrorSerializer = inline_serializer("TokenError", {"detail": serializers.CharField()})
LockedOutSerializer = inline_serializer(
    "LockedOut",
    {"detail": serializers.CharField(), "code": serializers.CharField(help_text='"locked_out"')},
)


class TokenObtainApi(APIView):
    # Credentials in the body are the whole authentication; no session, so no CSRF.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="TokenRequest")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer("ApiToken", {"token": serializers.CharField()}),
            400: OpenApiResponse(ErrorSerializer, description="Wrong username or password."),
            429: OpenApiResponse(
                LockedOutSerializer,
                description="Too many failures for this username from this address.",
            ),
        },
        auth=[],
        summary="The caller's API token, for a username and password",
    )
    def post(self, request: Request) -> Response:
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        # Axes keeps its state on Django's request, not DRF's wrapper of it.
        django_request = request._request
        user = authenticate(django_request, **given.validated_data)
        if getattr(django_request, "axes_locked_out", False):
            return Response(
                {"detail": lockout_message(), "code": "locked_out"}, status=LOCKED_OUT_STATUS
            )
        if user is None or not user.is_active:
            return Response(
                {"detail": "Wrong username or password."}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response({"token": api_token_for(user=user)})
