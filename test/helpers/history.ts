// A workflow history as text with its payloads decoded, so a test can search it for secrets.

export function historyText(history: unknown): string {
  const decoded: string[] = [];
  const raw = JSON.stringify(history, (key, value) => {
    if (key === 'data' && typeof value === 'string')
      decoded.push(Buffer.from(value, 'base64').toString('utf8'));
    return value;
  });
  return `${raw}\n${decoded.join('\n')}`;
}
