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
]
