"""Three tables linked by foreign keys: author <- book <- review."""

from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)


class Review(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE)
    stars = models.IntegerField()


class Note(models.Model):
    """A reader's note on a book: the rows `notes/loop/` and `notes/bulk/` write."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE)
    text = models.CharField(max_length=200)


class Rate(models.Model):
    """Exchange rates, kept up to date by a background job (here: the seed command), so that
    `rates/fixed/` reads them locally instead of calling the rates service in the request."""

    currency = models.CharField(max_length=3)
    value = models.FloatField()
