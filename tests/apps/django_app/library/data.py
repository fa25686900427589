"""The seed data's shape, in one place: the seed command and the views both use it.

Chosen so that each view's query count is easy to predict and the repeat counts differ
from each other (6 authors, 13 books, 26 reviews): a report that swaps two of them shows.
apmtop's default N+1 threshold is 5 repeats, so `FEW_BOOKS` stays below it and the
"many" duplicate run goes above it.
"""

AUTHORS = 6
BOOKS = 13
REVIEWS_PER_BOOK = 2

# `books/few/` touches the author of this many books: an N+1 shape below the threshold.
FEW_BOOKS = 4

# `duplicates/` and `duplicates/many/` run one fully literal statement this many times.
DUPLICATE_RUNS = 3
DUPLICATE_RUNS_MANY = 6


def author_of_book(book_number):
    """Author number (1-based) of book number `book_number` (1-based): round robin."""
    return (book_number - 1) % AUTHORS + 1

# `search/` and `search/prefix/` look for titles with this text: anywhere in the title (a
# leading-wildcard LIKE) or at its start (a prefix LIKE, which an index can serve).
SEARCH_TERM = "ook 1"
PREFIX_TERM = "Book 1"

# `rates/` asks the rates service (a local stub, at the URL in APMTOP_RATES_URL) for each of
# these currencies, one call after another, inside the request.
CURRENCIES = ["eur", "gbp", "jpy"]

# `books/export/` sends every book with this many bytes of text each: above apmtop's 300 kB
# huge-response threshold in total. `books/export/page/` sends EXPORT_PAGE_SIZE books.
EXPORT_TEXT_BYTES = 30_000
EXPORT_PAGE_SIZE = 2

# `notes/loop/` saves this many notes one `save()` at a time; `notes/bulk/` in one bulk_create.
NOTES_PER_REQUEST = 6

# `books/page/` pages through the books with Django's Paginator (a COUNT(*) per request);
# `books/page/cursor/` with a cursor (no count).
PAGE_SIZE = 4


def export_payload(books):
    """The JSON body `books/export/` sends for `books`, a list of (id, title) pairs."""
    import json

    text = "lorem ipsum " * (EXPORT_TEXT_BYTES // 12)
    rows = [{"id": book_id, "title": title, "text": text} for book_id, title in books]
    return json.dumps({"books": rows}).encode()
