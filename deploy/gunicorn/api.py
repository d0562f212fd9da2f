"""gunicorn settings of the `api` pool: the platform API (/api/), apart from the admin's workers.

A login flood or slow clients at the admin occupy the `web` pool only; these workers keep
answering the platforms (RELIABILITY.md scenario 30). An intake call takes milliseconds and its
body is at most 64 KiB, so the limits are tight: a worker silent for 10 s is killed, and a
request line or header beyond what a platform sends is refused before Django sees it.
"""

import os

workers = int(os.environ.get("API_CONCURRENCY", "3"))
timeout = 10
graceful_timeout = 10
keepalive = 2
max_requests = 5000
max_requests_jitter = 500
limit_request_line = 2048
limit_request_fields = 32
limit_request_field_size = 4096
accesslog = "-"
errorlog = "-"
