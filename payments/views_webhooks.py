"""The PSP webhook endpoint: public, CSRF-exempt, signature-checked, answers at once."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .services.psp_events import do_receive_psp_webhook


@csrf_exempt
@require_POST
def psp_webhook(request, psp_code: str):
    """Verify, store and acknowledge a PSP callback; a Celery task applies it after commit.

    200 for a stored or duplicate delivery, 401 for a missing, bad or stale signature, 400 for
    a malformed body, 404 for an unknown PSP code. Every refusal is recorded.
    """
    result = do_receive_psp_webhook(
        psp_code,
        method=request.method,
        path=request.path,
        headers=request.headers,
        body=request.body,
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    return JsonResponse({"status": result.outcome}, status=result.status_code)
