/** The first src/ file (relative path) whose dist/ counterpart is missing or older; undefined if none. */
export function staleSource(): string | undefined;
