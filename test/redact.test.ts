// What an activity lets escape is scrubbed of credentials in the forms tools print them.
import { redact } from '../src/lib/redact';

test('URLs with a password, password= assignments, given secrets', () => {
  expect(redact('at postgresql://aptible:s3cret@h:5432/db now')).toBe(
    'at postgresql://aptible:***@h:5432/db now',
  );
  expect(redact('password=hunter2 host=x PGPASSWORD="a b"')).toBe('password=*** host=x PGPASSWORD=***');
  expect(redact('token abcdef123 seen', ['abcdef123'])).toBe('token *** seen');
});

test("SQL that psql echoes in an error's context: the role's password (hash) is hidden", () => {
  const line = "LINE 1: ALTER ROLE app WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi';";
  expect(redact(line)).toBe("LINE 1: ALTER ROLE app WITH LOGIN PASSWORD '***';");
  expect(redact("CREATE ROLE x PASSWORD E'it''s'")).not.toContain('it');
});
