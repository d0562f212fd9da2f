"""The platform-facing API, mounted at ``/api/v1/`` (API.md)."""

from django.urls import path, re_path

from . import api

app_name = "api"
urlpatterns = [
    path("aftersales", api.aftersale_create, name="aftersale-create"),
    path("aftersales/<str:aftersale_id>", api.aftersale_detail, name="aftersale-detail"),
    # Anything else under /api/v1/ answers in JSON too.
    re_path(r"^(?P<path>.*)$", api.not_found, name="not-found"),
]
