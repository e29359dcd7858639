// A production-like source for the end-to-end fidelity test: several databases with awkward names, a
// database that accepts no connections, functions, comments and a role name that contain the admin password
// statement's text, a table whose name holds a newline, large objects, partitions (range, and hash on an
// enum), matviews, grants, default privileges, role settings, and properties of `postgres` and `template1`
// that pg_dumpall leaves out.
import type { PgTarget } from '../../src/pg/connection';
import { withClient } from '../../src/pg/connection';

export const ODD_DB = 'odd "db" name';
export const SHOP_DB = 'shop';
/** ALLOW_CONNECTIONS false: pg_dumpall cannot dump it. */
export const CLOSED_DB = 'archive';
/** Passwords of the fixture's roles: they must never show in a history or a log. */
export const FIXTURE_SECRETS = ['owner-fixture-pw', 'odd-fixture-pw'];

/** The statement the password filter removes, as text an object may legitimately hold. */
const LOOKALIKE = (admin: string) => `ALTER ROLE ${admin} WITH LOGIN PASSWORD 'not-a-real-one';`;

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export async function loadRichSource(source: PgTarget, admin: string): Promise<void> {
  const look = LOOKALIKE(admin);
  const oddRole = `"Odd ""Role""\n${look}"`;
  // One statement at a time: CREATE DATABASE refuses to run inside the implicit transaction of a batch.
  const cluster = [
    `CREATE ROLE app_owner LOGIN PASSWORD 'owner-fixture-pw'`,
    `CREATE ROLE reader NOLOGIN`,
    `CREATE ROLE ${oddRole} LOGIN PASSWORD 'odd-fixture-pw' CONNECTION LIMIT 3`,
    `COMMENT ON ROLE reader IS ${literal(`reads reports\n${look}\nend of comment`)}`,
    `ALTER ROLE reader SET statement_timeout = '5s'`,
    `ALTER ROLE app_owner SET search_path = sales, public`,
    `GRANT reader TO app_owner`,
    `CREATE DATABASE ${SHOP_DB} OWNER app_owner`,
    `CREATE DATABASE "odd ""db"" name"`,
    `CREATE DATABASE ${CLOSED_DB}`,
    `COMMENT ON DATABASE postgres IS 'the maintenance database'`,
    `ALTER DATABASE postgres SET search_path = "$user", public, extra`,
    `ALTER DATABASE postgres SET app.region = 'eu'`,
    `ALTER ROLE reader IN DATABASE postgres SET work_mem = '8MB'`,
    `GRANT CREATE ON DATABASE postgres TO app_owner`,
    `COMMENT ON DATABASE template1 IS 'the template, commented'`,
    `ALTER DATABASE ${SHOP_DB} SET default_statistics_target = 200`,
    `COMMENT ON DATABASE ${SHOP_DB} IS 'the shop'`,
  ];
  await withClient(source, source.database, async (c) => {
    for (const sql of cluster) await c.query(sql);
  });

  await withClient(source, SHOP_DB, (c) =>
    c.query(`
      CREATE EXTENSION citext;
      CREATE EXTENSION hstore;
      CREATE SCHEMA sales AUTHORIZATION app_owner;
      GRANT USAGE ON SCHEMA sales TO reader;
      ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA sales GRANT SELECT ON TABLES TO reader;
      CREATE TYPE sales.status AS ENUM ('new', 'paid', 'shipped', 'returned');
      CREATE DOMAIN sales.positive_amount AS numeric(12,2) CHECK (VALUE > 0);
      CREATE TABLE sales.orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        status sales.status NOT NULL DEFAULT 'new',
        amount sales.positive_amount NOT NULL,
        customer citext NOT NULL,
        attrs hstore,
        payload jsonb,
        placed timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00'
      );
      CREATE INDEX orders_payload ON sales.orders USING gin (payload);
      INSERT INTO sales.orders (status, amount, customer, attrs, payload, placed)
        SELECT (ARRAY['new','paid','shipped','returned'])[1 + i % 4]::sales.status, (i % 997) + 0.5,
               'Customer ' || (i % 5000), hstore('k', i::text),
               jsonb_build_object('i', i, 'tags', jsonb_build_array('a', i % 7), 'f', i / 7.0),
               timestamptz '2024-01-01 00:00+00' + (i || ' minutes')::interval
          FROM generate_series(1, 120000) i;
      GRANT SELECT ON sales.orders TO reader;
      GRANT SELECT (id, status) ON sales.orders TO ${oddRole};
      COMMENT ON TABLE sales.orders IS ${literal(`Orders.\n${look}\nThe line above is text, not a statement.`)};
      COMMENT ON COLUMN sales.orders.payload IS 'free-form';

      CREATE FUNCTION sales.rotate_note() RETURNS text LANGUAGE plpgsql AS $body$
BEGIN
  -- Operators once ran this by hand:
${look}
  RETURN 'not executed';
END
$body$;
      CREATE FUNCTION sales.order_total(p_status sales.status) RETURNS numeric
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = sales, pg_catalog
        AS 'SELECT coalesce(sum(amount), 0) FROM sales.orders WHERE status = p_status';
      REVOKE ALL ON FUNCTION sales.order_total(sales.status) FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION sales.order_total(sales.status) TO reader;

      CREATE TABLE sales.by_status (id bigint, status sales.status NOT NULL, note text) PARTITION BY HASH (status);
      CREATE TABLE sales.by_status_0 PARTITION OF sales.by_status FOR VALUES WITH (MODULUS 3, REMAINDER 0);
      CREATE TABLE sales.by_status_1 PARTITION OF sales.by_status FOR VALUES WITH (MODULUS 3, REMAINDER 1);
      CREATE TABLE sales.by_status_2 PARTITION OF sales.by_status FOR VALUES WITH (MODULUS 3, REMAINDER 2);
      INSERT INTO sales.by_status SELECT id, status, 'n' || id FROM sales.orders WHERE id <= 20000;

      CREATE TABLE sales.events (at date NOT NULL, kind text, n int) PARTITION BY RANGE (at);
      CREATE TABLE sales.events_2023 PARTITION OF sales.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
      CREATE TABLE sales.events_2024 PARTITION OF sales.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      CREATE TABLE sales.events_other PARTITION OF sales.events DEFAULT;
      INSERT INTO sales.events SELECT date '2022-06-01' + (i % 1200), 'k' || (i % 5), i FROM generate_series(1, 30000) i;

      CREATE TABLE sales.audit (id serial PRIMARY KEY, what text, at timestamptz DEFAULT '2024-01-01');
      CREATE FUNCTION sales.audit_order() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO sales.audit (what) VALUES (TG_OP || ' ' || NEW.id); RETURN NEW; END $$;
      CREATE TRIGGER orders_audit AFTER UPDATE ON sales.orders FOR EACH ROW EXECUTE FUNCTION sales.audit_order();
      UPDATE sales.orders SET amount = amount + 1 WHERE id <= 50;

      ALTER TABLE sales.audit ENABLE ROW LEVEL SECURITY;
      CREATE POLICY audit_readers ON sales.audit FOR SELECT TO reader USING (what LIKE 'UPDATE%');

      CREATE VIEW sales.paid_orders AS
        SELECT o.id, o.amount, upper(o.customer::text) AS who FROM sales.orders o WHERE o.status = 'paid';
      CREATE MATERIALIZED VIEW sales.daily AS
        SELECT placed::date AS day, count(*) AS n, sum(amount) AS total FROM sales.orders GROUP BY 1;
      CREATE MATERIALIZED VIEW sales.later AS SELECT 1 AS one WITH NO DATA;
      CREATE UNLOGGED TABLE sales.scratch (k text PRIMARY KEY, v int);
      INSERT INTO sales.scratch SELECT 'k' || i, i FROM generate_series(1, 500) i;
      CREATE TABLE sales.parent (id int, kind text);
      CREATE TABLE sales.child (extra text) INHERITS (sales.parent);
      INSERT INTO sales.parent VALUES (1, 'p');
      INSERT INTO sales.child VALUES (2, 'c', 'x');
      CREATE SEQUENCE sales.invoice_no START 1000 INCREMENT 7;
      SELECT setval('sales.invoice_no', 4242);
      CREATE TABLE public."new
line" (id int PRIMARY KEY, body text);
      INSERT INTO public."new
line" VALUES (1, 'plain'), (2, ${literal(look)}), (3, E'tab\\tand\\nnewline');
      SELECT lo_from_bytea(0, convert_to(repeat('large object one ', 2000), 'UTF8'));
      SELECT lo_from_bytea(0, '\\x00ff10'::bytea);
      ALTER TABLE sales.orders OWNER TO app_owner;
      ALTER TABLE sales.audit OWNER TO app_owner;
    `),
  );
  await withClient(source, SHOP_DB, async (c) => {
    const { rows } = await c.query<{ oid: string }>(
      'SELECT oid::text FROM pg_largeobject_metadata ORDER BY oid',
    );
    await c.query(`ALTER LARGE OBJECT ${Number(rows[0].oid)} OWNER TO app_owner`);
    await c.query(`COMMENT ON LARGE OBJECT ${Number(rows[1].oid)} IS 'binary bits'`);
    await c.query(`GRANT SELECT ON LARGE OBJECT ${Number(rows[1].oid)} TO reader`);
  });

  await withClient(source, ODD_DB, (c) =>
    c.query(`
      CREATE TABLE "Mixed Case" ("Key" int PRIMARY KEY, "Value" text);
      INSERT INTO "Mixed Case" SELECT i, repeat('v', i % 50) FROM generate_series(1, 3000) i;
      CREATE TABLE floats (x double precision, r real, n numeric);
      INSERT INTO floats VALUES (0.1, 0.1, 0.1), (1e300, 3.4e38, 1e-20), ('NaN', '-Infinity', 'NaN');
      COMMENT ON TABLE floats IS ${literal(look)};
    `),
  );
  await withClient(source, CLOSED_DB, (c) =>
    c.query(`CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2), (3);`),
  );
  await withClient(source, source.database, (c) =>
    c.query(`ALTER DATABASE ${CLOSED_DB} WITH ALLOW_CONNECTIONS false`),
  );
}
