"""Settings for the apmtop test app: the least Django needs to serve the views.

No sessions, auth, admin, messages or CSRF middleware, so the only SQL a request runs is
the SQL its view runs, and query counts per request are exact. CommonMiddleware (no SQL)
sets Content-Length on every response, for the response sizes apmtop reads. The SQLite file comes
from `APMTOP_TEST_DB` so every test run gets its own fresh database.
"""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A fixed key is fine: this app never runs anywhere but 127.0.0.1 in tests.
SECRET_KEY = "apmtop-test-app-not-a-secret"

# DEBUG off: no query log kept in memory, and errors become real 500 responses.
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["library"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "apmtop_demo.urls"
TEMPLATES = []

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "APMTOP_TEST_DB",
            os.path.join(tempfile.gettempdir(), "apmtop-django-app.sqlite3"),
        ),
        # CONN_MAX_AGE 0 (the default): one connection per request, closed at its end.
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
