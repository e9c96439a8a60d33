// Where the test servers are. Override with TEST_DATABASE_URL (a database we may CREATE DATABASE from)
// and TEST_REDIS_URL.
export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
