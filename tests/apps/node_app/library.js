'use strict';
// The data the seed loads and the fixed numbers the views use. The seed prints these (as JSON)
// so that a test derives what each view must run from the same source as the app.

// Tables (plain lower-case names, as apmtop reports them).
const TABLES = { author: 'authors', book: 'books', review: 'reviews' };

// 5 authors, 12 books spread round-robin over the authors, 2 reviews per book.
const AUTHORS = ['Ursula', 'Octavia', 'Stanislaw', 'Iain', 'Becky'];
const BOOKS = 12;
const REVIEWS_PER_BOOK = 2;

// How many times /duplicates and /duplicates/many run their one literal statement.
const DUPLICATE_RUNS = 3;
const DUPLICATE_RUNS_MANY = 6;

// Connections the app's pool may open (it never closes idle ones).
const POOL_MAX = 4;

module.exports = { TABLES, AUTHORS, BOOKS, REVIEWS_PER_BOOK, DUPLICATE_RUNS, DUPLICATE_RUNS_MANY, POOL_MAX };
