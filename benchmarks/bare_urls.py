"""The ceiling of `bench_webhooks`: a bare Django view inserting one row, on the same URL, served
by the same gunicorn with the same settings and middleware as the product's webhook view.

Only `benchmarks/webhook_settings.py` mounts it (BENCH_ROOT_URLCONF); the product's URLconf
never does. The table is created by the benchmark in its throwaway database.
"""

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

TABLE = "bench_bare_webhook"


@csrf_exempt
@require_POST
def bare_insert(request, psp_code: str):
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (psp_code, received_at, body) VALUES (%s, now(), %s)",
            [psp_code, request.body.decode("utf-8", errors="replace")],
        )
    return JsonResponse({"status": "accepted"})


urlpatterns = [path("webhooks/psp/<slug:psp_code>/", bare_insert)]
