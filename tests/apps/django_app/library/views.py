"""Views with known query behaviour, one per shape apmtop must recognise.

Query counts per request (A authors, B books, see `data.py`):

    books/            1 + B   N+1: one author lookup per book
    books/fixed/      1       the same page with select_related: a single JOIN
    books/few/        1 + 4   an N+1 shape below the threshold: not an N+1
    books/<int:pk>/   2       one book with its author, then its reviews
    authors/nested/   1 + A + B   two N+1 levels: books per author, reviews per book
    duplicates/       3       one literal statement run 3 times: a duplicate, not an N+1
    duplicates/many/  6       same, 6 times: above the N+1 threshold, still a duplicate
    health/           0
    error/            1       then raises: a 500
"""

from django.db import connection
from django.http import HttpResponse

from library import data
from library.models import Author, Book


def _text(lines):
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


def books(request):
    # `book.author` is not loaded with the book: each access runs its own SELECT.
    return _text(f"{book.title} by {book.author.name}" for book in Book.objects.order_by("id"))


def books_fixed(request):
    rows = Book.objects.select_related("author").order_by("id")
    return _text(f"{book.title} by {book.author.name}" for book in rows)


def books_few(request):
    rows = Book.objects.order_by("id")[: data.FEW_BOOKS]
    return _text(f"{book.title} by {book.author.name}" for book in rows)


def book_detail(request, pk):
    # `get` adds `LIMIT 21` to its SELECT (Django's guard against huge result sets).
    book = Book.objects.select_related("author").get(pk=pk)
    stars = [review.stars for review in book.review_set.order_by("id")]
    return _text([f"{book.title} by {book.author.name}", f"stars {stars}"])


def authors_nested(request):
    lines = []
    for author in Author.objects.order_by("id"):
        lines.append(author.name)
        for book in author.book_set.order_by("id"):
            stars = [review.stars for review in book.review_set.order_by("id")]
            lines.append(f"  {book.title} {stars}")
    return _text(lines)


def _run_literal(sql, times):
    # Values written into the SQL, no placeholders: every execution has the exact same
    # text, so apmtop can tell these are identical queries (duplicates), not an N+1.
    results = []
    with connection.cursor() as cursor:
        for _ in range(times):
            cursor.execute(sql)
            results.append(str(cursor.fetchone()[0]))
    return _text(results)


def duplicates(request):
    sql = "SELECT COUNT(*) FROM library_book WHERE author_id = 1"
    return _run_literal(sql, data.DUPLICATE_RUNS)


def duplicates_many(request):
    sql = "SELECT COUNT(*) FROM library_review WHERE stars = 5"
    return _run_literal(sql, data.DUPLICATE_RUNS_MANY)


def health(request):
    return _text(["ok"])


def error(request):
    Author.objects.count()
    raise RuntimeError("deliberate failure for apmtop's error counts")
