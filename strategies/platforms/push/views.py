"""``POST /platforms/<platform>/push/<app key>``: a marketplace's message push (PLATFORMS.md).

Thin: the pipeline verifies (or decrypts), stores and queues; this answers at once, before any
platform call, in the platform's own words (Kuaishou ``{"result": 1}``, Douyin
``{"code": 0, "msg": "success"}``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from strategies.pipeline.channels import push_receive


@csrf_exempt
@require_POST
def push(request: HttpRequest, platform: str, app_key: str) -> JsonResponse:
    length = int(request.headers.get("Content-Length") or 0)
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return JsonResponse({"error": "body too large"}, status=413)
    answer = push_receive(
        platform=platform, app_key=app_key, body=request.body, headers=request.headers
    )
    return JsonResponse(answer.body, status=answer.status)
