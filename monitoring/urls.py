"""Mounted at /admin/monitoring/ (before the admin's own URLs); every view is an admin view."""

from django.contrib import admin
from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [
    path(
        "consumption/dashboard/",
        admin.site.admin_view(views.consumption_dashboard),
        name="consumption",
    ),
    path(
        "decisions/export.csv",
        admin.site.admin_view(views.decisions_export),
        name="decisions_export",
    ),
]
