"""App config for `library`, the models and views of the apmtop test app."""

from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "library"
