import { withClient } from '../pg/connection';
import type { DatabaseConnection } from '../platform/platform';

// Sample data that exercises what a real dump and restore must carry: two databases, extra roles
// with passwords, grants, a jsonb column with a GIN index, foreign keys, a view and sequences.
const MAIN = `
CREATE ROLE reporting LOGIN PASSWORD 'reporting-demo-password';
CREATE ROLE app_rw LOGIN PASSWORD 'app-rw-demo-password';
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  details jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_details_gin ON orders USING gin (details);
CREATE TABLE events (id bigserial PRIMARY KEY, note text NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE SEQUENCE invoice_numbers START 1000;
SELECT nextval('invoice_numbers') FROM generate_series(1, 42);
INSERT INTO customers (name, email) SELECT 'customer ' || i, 'c' || i || '@example.com' FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, details)
  SELECT 1 + (i % 2000), jsonb_build_object('sku', 'SKU-' || (i % 97), 'qty', i % 7 + 1, 'tags', jsonb_build_array('demo', i % 3))
  FROM generate_series(1, 10000) i;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE (details->>'qty')::int > 5;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_rw;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_rw;
`;

const INVENTORY = `
CREATE TABLE items (sku text PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0), attrs jsonb);
INSERT INTO items SELECT 'SKU-' || i, i * 3, jsonb_build_object('color', (ARRAY['red','green','blue'])[1 + i % 3]) FROM generate_series(0, 96) i;
CREATE TABLE "Audit Log" (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "What" text);
INSERT INTO "Audit Log" ("What") SELECT 'entry ' || i FROM generate_series(1, 250) i;
`;

export async function loadSampleData(conn: DatabaseConnection): Promise<void> {
  await withClient(conn, conn.database, async (c) => {
    await c.query(MAIN);
    // CREATE DATABASE cannot share the implicit transaction of a multi-statement query.
    await c.query('CREATE DATABASE inventory');
  });
  await withClient(conn, 'inventory', (c) => c.query(INVENTORY));
}
