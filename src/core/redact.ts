// Secrets never reach output: passwords in URLs, and any known secret string, are masked.

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)([^@\s/]*)@/gi;

/** `postgresql://u:secret@h/db` -> `postgresql://u:***@h/db` (the URL need not parse). */
export function redactUrl(url: string): string {
  return url.replace(URL_CREDENTIALS, (_m, head: string) => `${head}***@`);
}

/** Masks URL passwords and every given secret (e.g. passwords taken from the configured URLs). */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = redactUrl(text);
  for (const s of secrets) {
    if (s.length >= 3) out = out.split(s).join('***');
    const encoded = encodeURIComponent(s);
    if (encoded !== s && encoded.length >= 3) out = out.split(encoded).join('***');
  }
  return out;
}

/** The passwords carried by URLs, decoded, for redactText. */
export function secretsOf(urls: readonly (string | undefined)[]): string[] {
  const out: string[] = [];
  for (const u of urls) {
    if (!u) continue;
    for (const part of u.split(',')) {
      const m = /^[a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:([^@\s/]*)@/i.exec(part.trim());
      if (m && m[1]) {
        out.push(m[1]);
        try {
          out.push(decodeURIComponent(m[1]));
        } catch {
          /* not percent-encoded */
        }
      }
    }
  }
  return [...new Set(out)];
}
