"""Registry pages: thin views that validate input, call one selector or service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from dosereg.registry.models import Study


@login_required
def home(request):
    empty = not Study.objects.exists()
    return render(request, "web/home.html", {"empty_registry": empty})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
