#!/usr/bin/env python3
"""Django's command-line entry point for the apmtop test app.

Run it under `opentelemetry-instrument` to export traces (see ../README.md). Two small
additions over the stock manage.py:

* SIGTERM exits like Ctrl-C does (`SystemExit` instead of an abrupt kill), so the
  OpenTelemetry SDK's exit hook still runs and the last batch of spans is exported.
* `DJANGO_SETTINGS_MODULE` is set here as usual, but that is too late for
  `opentelemetry-instrument`, which instruments Django before this file runs: export it
  in the environment when running instrumented.
"""

import os
import signal
import sys


def _exit_on_sigterm(signum, frame):
    # Raising SystemExit unwinds runserver's serve loop; atexit handlers, among them
    # the tracer provider's shutdown (which flushes pending spans), then run.
    sys.exit(128 + signum)


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apmtop_demo.settings")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
