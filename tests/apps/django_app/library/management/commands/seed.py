"""`manage.py seed`: create the tables and fill them with the same rows every time.

Run it *without* instrumentation, so the schema and insert queries never reach apmtop.
Prints one JSON line describing the data (counts and table names) for the test to
derive its expectations from.
"""

import json

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from library import data
from library.models import Author, Book, Review


class Command(BaseCommand):
    help = "Create the tables and load the deterministic seed data."

    def handle(self, *args, **options):
        # The app has no migrations: run_syncdb creates its tables directly.
        call_command("migrate", run_syncdb=True, verbosity=0)
        with transaction.atomic():
            Review.objects.all().delete()
            Book.objects.all().delete()
            Author.objects.all().delete()
            Author.objects.bulk_create(
                Author(id=a, name=f"Author {a}") for a in range(1, data.AUTHORS + 1)
            )
            Book.objects.bulk_create(
                Book(id=b, title=f"Book {b}", author_id=data.author_of_book(b))
                for b in range(1, data.BOOKS + 1)
            )
            Review.objects.bulk_create(
                Review(book_id=b, stars=(b + r) % 5 + 1)
                for b in range(1, data.BOOKS + 1)
                for r in range(data.REVIEWS_PER_BOOK)
            )
        summary = {
            "authors": Author.objects.count(),
            "books": Book.objects.count(),
            "reviews": Review.objects.count(),
            "few_books": data.FEW_BOOKS,
            "duplicate_runs": data.DUPLICATE_RUNS,
            "duplicate_runs_many": data.DUPLICATE_RUNS_MANY,
            "author_table": Author._meta.db_table,
            "book_table": Book._meta.db_table,
            "review_table": Review._meta.db_table,
        }
        self.stdout.write(json.dumps(summary))
