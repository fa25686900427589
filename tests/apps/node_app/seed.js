'use strict';
// Creates and fills the app's tables, uninstrumented: `node seed.js`. Connects with the
// standard libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE). Drops the tables first, so
// running it twice gives the same data. Prints one JSON line with what it loaded.

const { Client } = require('pg');
const lib = require('./library');

async function main() {
  const client = new Client();
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('DROP TABLE IF EXISTS reviews, books, authors');
    await client.query('CREATE TABLE authors (id integer PRIMARY KEY, name text NOT NULL)');
    await client.query(
      'CREATE TABLE books (id integer PRIMARY KEY, title text NOT NULL, author_id integer NOT NULL REFERENCES authors (id))',
    );
    await client.query(
      'CREATE TABLE reviews (id integer PRIMARY KEY, book_id integer NOT NULL REFERENCES books (id), rating integer NOT NULL)',
    );
    for (const [i, name] of lib.AUTHORS.entries()) {
      await client.query('INSERT INTO authors (id, name) VALUES ($1, $2)', [i + 1, name]);
    }
    let reviewId = 0;
    for (let id = 1; id <= lib.BOOKS; id++) {
      // Round-robin: book 1 -> author 1, ..., book 6 -> author 1 again.
      const authorId = ((id - 1) % lib.AUTHORS.length) + 1;
      await client.query('INSERT INTO books (id, title, author_id) VALUES ($1, $2, $3)', [id, `Book ${id}`, authorId]);
      for (let r = 0; r < lib.REVIEWS_PER_BOOK; r++) {
        reviewId++;
        await client.query('INSERT INTO reviews (id, book_id, rating) VALUES ($1, $2, $3)', [reviewId, id, 3 + (reviewId % 3)]);
      }
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  console.log(
    JSON.stringify({
      authors: lib.AUTHORS.length,
      books: lib.BOOKS,
      reviews: lib.BOOKS * lib.REVIEWS_PER_BOOK,
      author_table: lib.TABLES.author,
      book_table: lib.TABLES.book,
      review_table: lib.TABLES.review,
      duplicate_runs: lib.DUPLICATE_RUNS,
      duplicate_runs_many: lib.DUPLICATE_RUNS_MANY,
      pool_max: lib.POOL_MAX,
    }),
  );
}

main().catch((err) => {
  console.error(`seed failed: ${err.stack || err}`);
  process.exit(1);
});
