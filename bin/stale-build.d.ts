/** What makes dist/ stale: the first src/ entry changed since the build started, or 'no build yet'. */
export function staleSource(): string | undefined;
export const STAMP: string;
