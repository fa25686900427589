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
from library.models import Author, Book, Note, Rate, Review


class Command(BaseCommand):
    help = "Create the tables and load the deterministic seed data."

    def handle(self, *args, **options):
        # The app has no migrations: run_syncdb creates its tables directly.
        call_command("migrate", run_syncdb=True, verbosity=0)
        with transaction.atomic():
            Note.objects.all().delete()
            Rate.objects.all().delete()
            Rate.objects.bulk_create(
                Rate(currency=currency, value=1.0 + i / 10) for i, currency in enumerate(data.CURRENCIES)
            )
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
        books = list(Book.objects.order_by("id").values_list("id", "title"))
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
            "note_table": Note._meta.db_table,
            "search_matches": Book.objects.filter(title__icontains=data.SEARCH_TERM).count(),
            "prefix_matches": Book.objects.filter(title__istartswith=data.PREFIX_TERM).count(),
            "rate_calls": len(data.CURRENCIES),
            "export_bytes": len(data.export_payload(books)),
            "export_page_bytes": len(data.export_payload(books[: data.EXPORT_PAGE_SIZE])),
            "notes_per_request": data.NOTES_PER_REQUEST,
            "page_size": data.PAGE_SIZE,
        }
        self.stdout.write(json.dumps(summary))
