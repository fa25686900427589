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

Views with one cause of slowness each, and a fixed twin that must show no finding:

    search/             1   LIKE '%term%' (icontains): a leading wildcard no index can serve
    search/prefix/      1   LIKE 'term%' (istartswith): the fixed twin
    rates/              0   one HTTP call per currency to the rates service, one after another
    rates/fixed/        1   the rates read from the local table a background job fills
    books/export/       1   every book with its full text: a JSON body above 300 kB
    books/export/page/  1   a page of EXPORT_PAGE_SIZE books
    notes/loop/         NOTES_PER_REQUEST INSERTs: save() in a loop
    notes/bulk/         1   the same rows in one bulk_create (multi-row VALUES)
    books/page/         2   Paginator: COUNT(*) on every request, then the page
    books/page/cursor/  1   cursor pagination: the page only

The search views pass the term as an expression (`Value`), so Django writes the wildcards
into the SQL text (`LIKE '%' || ...`): the sqlite3 instrumentation does not capture bound
parameters, and with a plain string the pattern would be a placeholder whose value nobody
sees. Responses carry Content-Length (CommonMiddleware), which the instrumentation records
when told to capture that header.
"""

import json
import os
import urllib.request

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Value
from django.http import HttpResponse, JsonResponse

from library import data
from library.models import Author, Book, Note, Rate


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


def search(request):
    rows = Book.objects.filter(title__icontains=Value(data.SEARCH_TERM)).order_by("id")
    return _text(book.title for book in rows)


def search_prefix(request):
    rows = Book.objects.filter(title__istartswith=Value(data.PREFIX_TERM)).order_by("id")
    return _text(book.title for book in rows)


def rates(request):
    # The request waits for the rates service, once per currency, one call after another.
    base = os.environ["APMTOP_RATES_URL"]
    values = {}
    for currency in data.CURRENCIES:
        with urllib.request.urlopen(f"{base}/rates/{currency}", timeout=10) as response:
            values[currency] = json.load(response)["rate"]
    return JsonResponse(values)


def rates_fixed(request):
    return JsonResponse({rate.currency: rate.value for rate in Rate.objects.order_by("currency")})


def books_export(request):
    books = list(Book.objects.order_by("id").values_list("id", "title"))
    return HttpResponse(data.export_payload(books), content_type="application/json")


def books_export_page(request):
    books = list(Book.objects.order_by("id").values_list("id", "title")[: data.EXPORT_PAGE_SIZE])
    return HttpResponse(data.export_payload(books), content_type="application/json")


def notes_loop(request):
    for book in range(1, data.NOTES_PER_REQUEST + 1):
        Note(book_id=book, text=f"note on book {book}").save()
    return _text(["saved"])


def notes_bulk(request):
    Note.objects.bulk_create(
        Note(book_id=book, text=f"note on book {book}") for book in range(1, data.NOTES_PER_REQUEST + 1)
    )
    return _text(["saved"])


def books_page(request):
    page = Paginator(Book.objects.order_by("id"), data.PAGE_SIZE).page(int(request.GET.get("page", "1")))
    return _text(book.title for book in page)


def books_page_cursor(request):
    after = int(request.GET.get("after", "0"))
    rows = Book.objects.filter(id__gt=after).order_by("id")[: data.PAGE_SIZE]
    return _text(book.title for book in rows)
