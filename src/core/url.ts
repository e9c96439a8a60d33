// What can be read from a URL that does not parse, without ever reading its password.

/**
 * The port as written in `scheme://[userinfo@]host:port/...`, or undefined. The userinfo is
 * everything before the last `@` ahead of the path, so a password with `/`, `:` or `@` is skipped.
 * `postgresql://u@127.0.0.1:99999/db?password=x` -> '99999'.
 */
export function rawPort(url: string): string | undefined {
  const rest = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const beforeQuery = rest.split(/[?#]/)[0] ?? '';
  const hostPart = beforeQuery.slice(beforeQuery.lastIndexOf('@') + 1).split('/')[0] ?? '';
  return /:(\d+)$/.exec(hostPart)?.[1];
}

/** Why a URL that `new URL` rejected does not parse, in words a user can act on. */
export function unparsableReason(url: string): string {
  const port = rawPort(url);
  if (port !== undefined && Number(port) > 65535) return `port ${port} is out of range (1-65535)`;
  return 'it does not parse (a password holding / ? # @ or : must be percent-encoded, e.g. / as %2F)';
}
