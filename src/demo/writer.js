// The demo's "app": one service that writes a row every 100 ms to the database in $DB_URL, as a
// production app would keep writing. It stops cleanly on SIGTERM (what a scale-down sends), so every
// row it reports as written is committed.
const { Client } = require('pg');

const url = process.env.DB_URL;
if (!url) {
  console.error('writer: DB_URL is not set');
  process.exit(2);
}
let stopping = false;
process.on('SIGTERM', () => (stopping = true));
process.on('SIGINT', () => (stopping = true));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const container = process.env.PGSHIFT_CONTAINER ?? '0';
  while (!stopping) {
    const client = new Client({ connectionString: url });
    try {
      await client.connect();
      while (!stopping) {
        await client.query('INSERT INTO events (note) VALUES ($1)', [`written by container ${container}`]);
        await sleep(100);
      }
    } catch (err) {
      console.error(`writer: ${err.message}; retrying`);
      await sleep(500);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

main().then(() => process.exit(0));
