"""WSGI entry point (gunicorn config.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# A labeling request allocates thousands of short-lived objects, so at Python's default
# threshold (700) the cyclic collector ran every few requests and its full passes walked the
# whole loaded app: about 8% of a request's CPU (bench/labeling_load.py). The app's own objects
# are frozen out of collection and the young generation collects less often; reference
# counting still frees almost everything at once, so memory stays flat.
gc.freeze()
gc.set_threshold(20_000, 50, 100)
