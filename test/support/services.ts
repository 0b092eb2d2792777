/** Where the tests find PostgreSQL and Redis; override for other machines. */
export const TEST_PG_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

export function databaseUrl(name: string): string {
  const u = new URL(TEST_PG_URL);
  u.pathname = '/' + name;
  return u.toString();
}
