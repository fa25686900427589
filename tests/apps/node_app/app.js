'use strict';
// Express + node-postgres app whose routes run a known number and shape of SQL statements.
// Run it instrumented: `node --require ./otel.js app.js`. Listens on 127.0.0.1:$PORT
// (default 3000); connects with the libpq variables PGHOST, PGPORT, PGUSER, PGDATABASE.
//
// Per request, with B books and A authors from the seed (see library.js):
//   GET /health           0 statements
//   GET /books            1 + B: the books, then the author of each book by `id = $1` (N+1)
//   GET /books/fixed      1: the same data with a JOIN (the fix)
//   GET /books/fixed-any  2: the books, then their authors with `id = ANY($1)` (the other fix)
//   GET /books/inline     1 + B: the books, then a review count per book with the id written
//                         into the SQL text (`book_id = 7`): one N+1 whose literals differ
//   GET /books/:id        3 statements of different shapes at once (Promise.all): no N+1
//   GET /authors/nested   1 + A + B on one pooled client: authors, books per author, reviews
//                         per book (two N+1, one per level)
//   GET /duplicates       the same literal statement DUPLICATE_RUNS times (a duplicate)
//   GET /duplicates/many  another literal statement DUPLICATE_RUNS_MANY times (a duplicate)
//   GET /error            1 statement on a missing table, then a 500
// Every pool.query() checks a client out of the pool (a pg-pool.connect span); the pool opens
// at most POOL_MAX connections (pg.connect spans) and keeps them.

const express = require('express');
const { Pool } = require('pg');
const lib = require('./library');

const pool = new Pool({ max: lib.POOL_MAX, idleTimeoutMillis: 0 });
const app = express();

app.get('/health', (req, res) => {
  res.json({ ok: true });
});

// N+1: one lookup per book, with a placeholder.
app.get('/books', async (req, res) => {
  const { rows: books } = await pool.query('SELECT id, title, author_id FROM books ORDER BY id');
  for (const book of books) {
    const { rows } = await pool.query('SELECT id, name FROM authors WHERE id = $1', [book.author_id]);
    book.author = rows[0].name;
  }
  res.json(books);
});

// The fixed twin of /books: one JOIN.
app.get('/books/fixed', async (req, res) => {
  const { rows } = await pool.query(
    'SELECT b.id, b.title, a.name AS author FROM books b JOIN authors a ON a.id = b.author_id ORDER BY b.id',
  );
  res.json(rows);
});

// The other fix: two statements, the second loads every author at once.
app.get('/books/fixed-any', async (req, res) => {
  const { rows: books } = await pool.query('SELECT id, title, author_id FROM books ORDER BY id');
  const ids = [...new Set(books.map((b) => b.author_id))];
  const { rows: authors } = await pool.query('SELECT id, name FROM authors WHERE id = ANY($1)', [ids]);
  const names = new Map(authors.map((a) => [a.id, a.name]));
  res.json(books.map((b) => ({ ...b, author: names.get(b.author_id) })));
});

// N+1 with the id inlined into the SQL text (as string-building code does): every statement
// differs by its literal, but they share one shape. Book ids are distinct, so no duplicate.
app.get('/books/inline', async (req, res) => {
  const { rows: books } = await pool.query('SELECT id, title FROM books ORDER BY id');
  for (const book of books) {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM reviews WHERE book_id = ${Number(book.id)}`);
    book.reviews = rows[0].n;
  }
  res.json(books);
});

// Three different statements at once, as siblings: concurrency is not an N+1.
app.get('/books/:id', async (req, res) => {
  const id = Number(req.params.id);
  const [book, reviews, stats] = await Promise.all([
    pool.query('SELECT id, title, author_id FROM books WHERE id = $1', [id]),
    pool.query('SELECT id, rating FROM reviews WHERE book_id = $1 ORDER BY id', [id]),
    pool.query('SELECT count(*)::int AS n, avg(rating)::float AS mean FROM reviews WHERE book_id = $1', [id]),
  ]);
  if (book.rows.length === 0) {
    res.status(404).json({ error: 'no such book' });
    return;
  }
  res.json({ ...book.rows[0], reviews: reviews.rows, stats: stats.rows[0] });
});

// Nested N+1 on one checked-out client: books per author, then reviews per book.
app.get('/authors/nested', async (req, res) => {
  const client = await pool.connect();
  try {
    const { rows: authors } = await client.query('SELECT id, name FROM authors ORDER BY id');
    for (const author of authors) {
      const { rows: books } = await client.query('SELECT id, title FROM books WHERE author_id = $1 ORDER BY id', [
        author.id,
      ]);
      for (const book of books) {
        const { rows: reviews } = await client.query('SELECT id, rating FROM reviews WHERE book_id = $1', [book.id]);
        book.reviews = reviews;
      }
      author.books = books;
    }
    res.json(authors);
  } finally {
    client.release();
  }
});

// The very same statement, values and all, run again and again: a duplicate, not an N+1.
app.get('/duplicates', async (req, res) => {
  let n = 0;
  for (let i = 0; i < lib.DUPLICATE_RUNS; i++) {
    n = (await pool.query('SELECT count(*)::int AS n FROM books WHERE author_id = 1')).rows[0].n;
  }
  res.json({ books_by_author_1: n });
});

// As /duplicates, past the N+1 threshold: still a duplicate.
app.get('/duplicates/many', async (req, res) => {
  let n = 0;
  for (let i = 0; i < lib.DUPLICATE_RUNS_MANY; i++) {
    n = (await pool.query('SELECT count(*)::int AS n FROM reviews WHERE rating = 5')).rows[0].n;
  }
  res.json({ five_star_reviews: n });
});

// A failing statement: Express 5 passes the rejection to its error handler, which answers 500.
app.get('/error', async (req, res) => {
  await pool.query('SELECT id FROM missing_table');
  res.json({ unreachable: true });
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => {
  console.log(`app: listening on http://127.0.0.1:${port}`);
});
