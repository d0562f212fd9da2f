"""gunicorn settings of the `web` pool: the admin (everything but /api/), behind the proxy.

Sync workers are right behind a buffering proxy (deploy/nginx.conf): a worker only ever sees a
whole request, so a slow client costs a proxy connection, never a worker.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# An admin page or CSV export may take a while; a worker silent this long is killed.
timeout = 30
graceful_timeout = 25
keepalive = 5
# Recycle workers now and then (memory growth), staggered so they never restart together.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
