import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import { PROJECT_ROOT } from '../src/paths';

/** .env.example documents every variable the service reads, and nothing it does not read. */

const read = (rel: string) => fs.readFileSync(path.join(PROJECT_ROOT, rel), 'utf8');

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(PROJECT_ROOT, dir), { withFileTypes: true, recursive: true })
    .flatMap((e) =>
      e.isFile() && e.name.endsWith('.ts')
        ? [path.relative(PROJECT_ROOT, path.join(e.parentPath, e.name))]
        : [],
    );
}

const SOURCES = [...sourceFiles('src'), ...sourceFiles('scripts')].map((f) => ({
  file: f,
  text: read(f),
}));

/** `NAME=` lines, commented out or not. */
function documented(): Map<string, string> {
  const vars = new Map<string, string>();
  for (const m of read('.env.example').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=(.*)$/gm))
    vars.set(m[1]!, m[2]!.trim());
  return vars;
}

test('when src/config.ts reads a variable, then .env.example documents it', () => {
  const config = read('src/config.ts');
  const names = new Set(
    [
      ...config.matchAll(
        /\br\.(?:raw|int|bool|string|url|key32(?:List)?)\(\s*'([A-Z][A-Z0-9_]*)'/g,
      ),
    ].map((m) => m[1]!),
  );
  expect(names.size).toBeGreaterThan(20);
  const docs = documented();
  expect([...names].filter((n) => !docs.has(n))).toEqual([]);
});

test('when any source file reads process.env directly, then .env.example documents that variable', () => {
  const names = new Set(
    SOURCES.flatMap(({ text }) => [
      ...text.matchAll(/process\.env(?:\.([A-Z][A-Z0-9_]*)|\[\s*'([A-Z][A-Z0-9_]*)'\s*\])/g),
    ]).map((m) => (m[1] ?? m[2])!),
  );
  const docs = documented();
  expect([...names].filter((n) => !docs.has(n))).toEqual([]);
});

test('when .env.example documents a variable, then some source file reads it (no stale entries)', () => {
  const unread = [...documented().keys()].filter(
    (name) =>
      !SOURCES.some(({ text }) => text.includes(`'${name}'`) || text.includes(`env.${name}`)),
  );
  expect(unread).toEqual([]);
});

test('when .env.example is read, then it holds no secret values, only placeholders', () => {
  const docs = documented();
  for (const name of [
    'JWT_SECRET_KEY',
    'ENCRYPTION_MASTER_KEY',
    'ADMIN_PASSWORD',
    'DISCOGS_CONSUMER_SECRET',
  ]) {
    expect({ name, value: docs.get(name) ?? '' }).toEqual({ name, value: '' });
  }
  // Example passwords inside URLs are obvious placeholders.
  for (const [name, value] of docs) {
    const password = /:\/\/[^:/@]+:([^@]+)@/.exec(value)?.[1];
    if (password !== undefined) expect({ name, password }).toEqual({ name, password: 'change-me' });
  }
});
