import http from 'node:http';
import fc from 'fast-check';
import type { SpecOperation, SpecWalker } from './spec-walk';

/**
 * Hostile requests built from the spec: request models, the raw values an attacker or a broken
 * client sends, fast-check arbitraries that mutate an operation's documented example, and a
 * raw HTTP sender (node:http, so paths, bodies and headers go out exactly as built).
 */

/** A JSON number written out as-is (1e309, -0, 30 digits), which JSON.stringify cannot. */
export class RawNumber {
  constructor(readonly text: string) {}
}
export type Json = null | boolean | string | RawNumber | Json[] | { [k: string]: Json };

/** JSON text from a Json value; keys like `__proto__` are written as own keys. */
export function jsonText(v: Json): string {
  if (v instanceof RawNumber) return v.text;
  if (Array.isArray(v)) return `[${v.map(jsonText).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${jsonText(x)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

function toJson(v: unknown): Json {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return new RawNumber(String(v));
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v as object)) out[k] = toJson(x);
    return out;
  }
  return null;
}

/** Numbers that have broken parsers and coercions: non-finite, negative zero, fractions, huge. */
export const HOSTILE_NUMBERS = [
  '1e309',
  '-1e309',
  '1e400',
  '-0',
  '1.5',
  '0.0000001',
  '123456789012345678901234567890',
  '-123456789012345678901234567890',
  '9007199254740993',
  '4.9e-324',
  '1e-400',
  '-1',
  '0',
];
/** The same in a query string, plus spellings only text can carry. */
export const HOSTILE_QUERY_NUMBERS = [
  ...HOSTILE_NUMBERS,
  'Infinity',
  '-Infinity',
  'NaN',
  '0x10',
  '1_000',
  ' 1',
  '1 ',
  '',
  '+1',
  '01',
];

export const HOSTILE_STRINGS = [
  '',
  ' ',
  '../../../../etc/passwd',
  '..\\..\\windows\\win.ini',
  "' OR '1'='1' --",
  '1; DROP TABLE users; --',
  "admin'--",
  '" OR ""="',
  '%',
  '\u0000',
  'a\u0000b',
  '\u202eevil',
  'e\u0301\u0301\u0301',
  '\u200b\u200b',
  '\ufeff',
  '\ud83d\ude00'.repeat(5),
  '\ud800',
  '\udfff',
  'A'.repeat(300),
  '__proto__',
  'constructor',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  '{{7*7}}',
  'null',
  'true',
  '[]',
  '{}',
];

/** Written into a path or query without encoding: malformed or sneaky percent-encoding. */
export const RAW_URL_PIECES = [
  '%',
  '%zz',
  '%00',
  '%ED%A0%80',
  '..%2f..%2f',
  '%2e%2e',
  '%252e',
  '%C0%AE',
];

/** Path suffixes that step out of the operation's path. */
export const PATH_MUTATIONS = [
  '/..',
  '/../../../../etc/passwd',
  '/%2e%2e/%2e%2e/',
  '//',
  '/',
  ';x=1',
  '/.%00',
  '/..%2f..%2fhealth',
];

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'APPLICATION/JSON',
  'application/problem+json',
  'application/x-www-form-urlencoded',
  'text/plain',
  'application/xml',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/json, text/plain',
  '',
];

/** Percent-encodes text for a URL; a lone surrogate becomes its (invalid) WTF-8 bytes. */
export function urlEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s]
      .map((ch) => {
        try {
          return encodeURIComponent(ch);
        } catch {
          const c = ch.charCodeAt(0);
          return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
            .map((b) => '%' + b.toString(16).toUpperCase())
            .join('');
        }
      })
      .join('');
  }
}

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.emailAddress() },
);

export const hostileJson: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.constantFrom(...HOSTILE_NUMBERS).map((t) => new RawNumber(t)),
    hostileString,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(
      fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString'), hostileString),
      tie('value'),
      { maxKeys: 3 },
    ),
  ),
})).value;

/** How a body goes on the wire. */
export type BodyEncoding =
  'json' | 'form' | 'broken-json' | 'deep-json' | 'huge' | 'none' | 'gzip-lie';

export interface HostileRequest {
  op: SpecOperation;
  method: string;
  /** Raw request target: path and query exactly as sent. */
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The path no longer names the operation (traversal, extra segments). */
  pathMutated: boolean;
  /** A header larger than the server accepts. */
  headerOverflow: boolean;
  note: string;
}

/** The example body an operation documents, as the starting point for mutations. */
export function exampleBody(op: SpecOperation): { type: string; value: Json } | null {
  if (!op.body) return null;
  const entries = Object.entries(op.body.content);
  const [type, media] = entries.find(([t]) => t === 'application/json') ?? entries[0]!;
  return { type, value: toJson(media.example ?? {}) };
}

export function pathWith(op: SpecOperation, values: Record<string, string>): string {
  return op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => values[name] ?? 'x');
}

/** Default values for path parameters: their example, or a well-formed placeholder. */
export function examplePathValues(op: SpecOperation): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of op.parameters.filter((x) => x.in === 'path')) {
    const ex = p.example ?? (p.schema.example as unknown);
    out[p.name] = urlEncode(
      ex !== undefined
        ? String(ex)
        : p.schema.format === 'uuid'
          ? '00000000-0000-4000-8000-000000000000'
          : 'x',
    );
  }
  return out;
}

export function encodeForm(v: Json): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof RawNumber)
    return urlEncode(jsonText(v));
  return Object.entries(v)
    .map(
      ([k, x]) =>
        `${urlEncode(k)}=${urlEncode(typeof x === 'string' ? x : x instanceof RawNumber ? x.text : jsonText(x))}`,
    )
    .join('&');
}

export interface Sent {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Sends a request exactly as built; a connection error is reported, not thrown. */
export function send(port: number, r: HostileRequest): Promise<Sent | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: r.method,
        path: r.target,
        headers: {
          ...r.headers,
          ...(r.body ? { 'content-length': String(r.body.length) } : {}),
          connection: 'close',
        },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', (e) => resolve({ error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (e) => resolve({ error: e.message }));
    req.end(r.body);
  });
}

/** Per operation and status, how many requests were sent: the run's report. */
export class Tally {
  readonly counts = new Map<string, Map<number, number>>();
  add(op: string, status: number): void {
    const m = this.counts.get(op) ?? new Map<number, number>();
    m.set(status, (m.get(status) ?? 0) + 1);
    this.counts.set(op, m);
  }
  get total(): number {
    let n = 0;
    for (const m of this.counts.values()) for (const c of m.values()) n += c;
    return n;
  }
  toString(): string {
    return [...this.counts.entries()]
      .map(
        ([op, m]) =>
          `${op}: ${[...m.entries()]
            .sort((a, b) => a[0] - b[0])
            .map(([s, c]) => `${s}x${c}`)
            .join(' ')}`,
      )
      .join('\n');
  }
}

export type { SpecWalker };
