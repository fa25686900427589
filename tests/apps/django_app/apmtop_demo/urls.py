"""Routes of the apmtop test app.

apmtop shows each Django route with a leading slash: `books/` is reported as `/books/`
and `books/<int:pk>/` as `/books/<int:pk>/`.
"""

from django.urls import path

from library import views

urlpatterns = [
    path("books/", views.books),
    path("books/fixed/", views.books_fixed),
    path("books/few/", views.books_few),
    path("books/<int:pk>/", views.book_detail),
    path("authors/nested/", views.authors_nested),
    path("duplicates/", views.duplicates),
    path("duplicates/many/", views.duplicates_many),
    path("health/", views.health),
    path("error/", views.error),
    path("search/", views.search),
    path("search/prefix/", views.search_prefix),
    path("rates/", views.rates),
    path("rates/fixed/", views.rates_fixed),
    path("books/export/", views.books_export),
    path("books/export/page/", views.books_export_page),
    path("notes/loop/", views.notes_loop),
    path("notes/bulk/", views.notes_bulk),
    path("books/page/", views.books_page),
    path("books/page/cursor/", views.books_page_cursor),
]
