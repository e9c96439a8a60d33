// Secrets never reach output: the password in the userinfo of anything that looks like a URL (parsed
// or not), every password-like query parameter, `password=` pairs of a keyword/value connection
// string, and any known secret string (the passwords of the configured URLs, raw and decoded).

/** Where a URL-looking token starts: `scheme://` (RFC 3986 scheme characters). */
const SCHEME = /[a-z][a-z0-9+.-]*:\/\//gi;
/** A query parameter whose value is a secret (libpq `password`, `sslpassword`, tokens...). */
const SECRET_PARAM = /([?&;](?:[a-z0-9_.-]*pass(?:word)?[a-z0-9_.-]*|[a-z0-9_.-]*secret|[a-z0-9_.-]*token)=)([^&#\s"'<>\\]*)/gi;
/** `password=...` in a keyword/value connection string or any `key=value` text (not inside a URL). */
const SECRET_PAIR = /(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"&,;)]+)/gi;

/** The end of a URL-looking token starting at `from`: whitespace, a quote, `<>`, or the next `scheme://`. */
function tokenEnd(text: string, from: number): number {
  let end = text.length;
  const stop = /[\s"'`<>\\]/g;
  stop.lastIndex = from;
  const s = stop.exec(text);
  if (s) end = s.index;
  SCHEME.lastIndex = from;
  const next = SCHEME.exec(text);
  if (next && next.index < end) {
    // a comma-separated list of URLs (a Redis cluster's nodes): stop before the separator
    end = next.index > from && text[next.index - 1] === ',' ? next.index - 1 : next.index;
  }
  return end;
}

/**
 * Masks one URL-looking token (`scheme://...`, which need not parse): in the userinfo (everything
 * before the LAST `@` of the token, so a password holding `/`, `:` or `@` is covered) the part after
 * the first `:` becomes `***`; a password-like query parameter's value becomes `***`.
 * `postgresql://u:pa/ss@h/db` -> `postgresql://u:***@h/db`; `rediss://:pw@h` -> `rediss://:***@h`;
 * `postgresql://u@h:99999/db?password=x` -> `postgresql://u@h:99999/db?password=***`.
 */
function maskToken(token: string, schemeLength: number): string {
  let out = token;
  const at = out.lastIndexOf('@');
  if (at > schemeLength) {
    const userinfo = out.slice(schemeLength, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) out = out.slice(0, schemeLength) + userinfo.slice(0, colon + 1) + '***' + out.slice(at);
  }
  return out.replace(SECRET_PARAM, (_m, head: string) => `${head}***`);
}

/** Masks the password of every URL-looking token in `text` (the URLs need not parse). */
export function redactUrl(text: string): string {
  let out = '';
  let pos = 0;
  SCHEME.lastIndex = 0;
  for (;;) {
    SCHEME.lastIndex = pos;
    const m = SCHEME.exec(text);
    if (!m) break;
    const start = m.index;
    const end = tokenEnd(text, start + m[0].length);
    out += text.slice(pos, start) + maskToken(text.slice(start, end), m[0].length);
    pos = end;
  }
  return out + text.slice(pos);
}

let remembered: readonly string[] = [];

/** The CLI remembers the configured URLs' passwords once, so every printer (JSON documents included) can mask them. */
export function rememberSecrets(secrets: readonly string[]): void {
  remembered = [...new Set([...remembered, ...secrets])];
}

/** The secrets remembered so far (see rememberSecrets). */
export function knownSecrets(): readonly string[] {
  return remembered;
}

/** Every string inside `value` (a JSON document) passed through redactText. */
export function redactDeep<T>(value: T, secrets: readonly string[] = []): T {
  if (typeof value === 'string') return redactText(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)])) as T;
  return value;
}

/** Masks URL passwords, `password=` pairs, and every given secret (e.g. passwords taken from the configured URLs). */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = redactUrl(text).replace(SECRET_PAIR, (_m, head: string) => `${head}***`);
  for (const s of secrets) {
    if (s.length >= 3) out = out.split(s).join('***');
    const encoded = encodeURIComponent(s);
    if (encoded !== s && encoded.length >= 3) out = out.split(encoded).join('***');
  }
  return out;
}

/**
 * The passwords carried by URLs (the userinfo after its first `:`, up to the token's last `@`, and
 * every password-like query parameter), raw and percent-decoded, for redactText. The URLs need not
 * parse; a comma-separated list of URLs gives the secrets of each.
 */
export function secretsOf(urls: readonly (string | undefined)[]): string[] {
  const out: string[] = [];
  const add = (v: string) => {
    if (!v) return;
    out.push(v);
    try {
      out.push(decodeURIComponent(v));
    } catch {
      /* not percent-encoded */
    }
  };
  for (const u of urls) {
    if (!u) continue;
    let pos = 0;
    for (;;) {
      SCHEME.lastIndex = pos;
      const m = SCHEME.exec(u);
      if (!m) break;
      const end = tokenEnd(u, m.index + m[0].length);
      const token = u.slice(m.index, end);
      const schemeLength = m[0].length;
      const at = token.lastIndexOf('@');
      if (at > schemeLength) {
        const userinfo = token.slice(schemeLength, at);
        const colon = userinfo.indexOf(':');
        if (colon >= 0) add(userinfo.slice(colon + 1));
      }
      for (const p of token.matchAll(SECRET_PARAM)) add(p[2] ?? '');
      pos = end;
    }
    for (const p of u.matchAll(SECRET_PAIR)) add((p[2] ?? '').replace(/^'|'$/g, ''));
  }
  return [...new Set(out)];
}
