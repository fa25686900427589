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
