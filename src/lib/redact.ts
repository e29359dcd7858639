// Errors from child processes and drivers can echo connection strings. Everything an activity
// lets escape (into Temporal history or logs) goes through here first.

const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@\s]*)@/gi;
const PASSWORD_ASSIGNMENT = /\b(password|PGPASSWORD)(\s*[=:]\s*)('[^']*'|"[^"]*"|\S+)/gi;
// SQL, as psql echoes it in an error's context: ALTER ROLE x WITH PASSWORD 'SCRAM-SHA-256$…'.
const SQL_PASSWORD = /\b(PASSWORD\s+)('[^']*'|E'[^']*')/gi;

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text
    .replace(URL_PASSWORD, '$1***@')
    .replace(PASSWORD_ASSIGNMENT, '$1$2***')
    .replace(SQL_PASSWORD, "$1'***'");
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}
