import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import fc from 'fast-check';
import { answerClientError } from '../src/http/problem';
import {
  CONTENT_TYPES,
  HOSTILE_NUMBERS,
  HOSTILE_QUERY_NUMBERS,
  PATH_MUTATIONS,
  RAW_URL_PIECES,
  RawNumber,
  Tally,
  encodeForm,
  examplePathValues,
  exampleBody,
  hostileJson,
  hostileString,
  jsonText,
  pathWith,
  send,
  urlEncode,
  type BodyEncoding,
  type HostileRequest,
  type Json,
} from './support/hostile';
import { startDiscogsStandIn, type DiscogsStandIn } from './support/discogs-stand-in';
import { SpecWalker, isNumeric, type SpecOperation } from './support/spec-walk';
import { signedInAdmin, useTestApp } from './support/test-app';

/**
 * Hostile input over every operation the spec declares (read at test time, so operations added
 * later are covered without editing this file). Every answer must be below 500, declared for
 * the operation (status and content type), valid against the declared schema, and a refused
 * request must leave every table's row count unchanged. Seeded, so a failure replays.
 */
jest.setTimeout(240_000);

const SEED = 20261201;
const RUNS_PER_OPERATION = 50;

let discogs: DiscogsStandIn;
/** Filled in once the stand-in listens, before useTestApp's own beforeAll reads it. */
const env: Record<string, string> = {
  // Limits off: thousands of refused logins from one address would otherwise be 429s only.
  RATE_LIMIT_ENABLED: 'false',
};
beforeAll(async () => {
  // A healthy Discogs, so that its operations answer as they do in production.
  discogs = await startDiscogsStandIn();
  Object.assign(env, { DISCOGS_API_URL: discogs.url, DISCOGS_AUTHORIZE_URL: discogs.authorizeUrl });
});
afterAll(async () => {
  await discogs?.close();
});
const t = useTestApp(env);
let walker: SpecWalker;
let apiPort: number;
let healthPort: number;
const servers: http.Server[] = [];
const tally = new Tally();
let admin: { token: string };
let countSql: string;
let rowsSnapshot: string | undefined;

async function listen(app: http.RequestListener): Promise<number> {
  const server = http.createServer(app);
  server.on('clientError', answerClientError);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function signInAdmin(): Promise<void> {
  admin = await signedInAdmin(t);
}

/**
 * After a request that succeeded (a logout, a change of the Discogs credentials), the admin may
 * need a fresh session and Discogs its real credentials again.
 */
async function keepAdminSignedIn(): Promise<void> {
  const me = await fetch(`http://127.0.0.1:${apiPort}/api/v1/auth/me`, {
    headers: { authorization: `Bearer ${admin.token}` },
  });
  if (me.status !== 200) await signInAdmin();
  const put = await fetch(`http://127.0.0.1:${apiPort}/api/v1/admin/config/discogs`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      consumer_key: discogs.consumerKey,
      consumer_secret: discogs.consumerSecret,
    }),
  });
  expect(put.status).toBe(200);
}

/** Exact row counts of every table (tables added by later migrations included). */
async function counts(): Promise<string> {
  const [row] = await t.sql(countSql);
  return JSON.stringify(row);
}

beforeAll(async () => {
  walker = new SpecWalker(t.deps.spec);
  apiPort = await listen(t.app);
  healthPort = await listen(t.healthApp);
  await signInAdmin();
  await keepAdminSignedIn();
  const tables = await t.sql(
    `SELECT tablename::text AS name FROM pg_tables
     WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1`,
  );
  countSql =
    'SELECT ' +
    tables
      .map((r) => `(SELECT count(*) FROM "${r.name as string}")::int AS "${r.name as string}"`)
      .join(', ');
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  console.log(`hostile input: ${tally.total} requests\n${tally.toString()}`);
});

function describeRequest(r: HostileRequest): string {
  const body = r.body ? r.body.subarray(0, 300).toString('utf8') : '';
  return `${r.op.operationId} (${r.note}): ${r.method} ${r.target.slice(0, 300)} ${JSON.stringify(
    Object.fromEntries(
      Object.entries(r.headers).map(([k, v]) => [k, v.length > 80 ? `${v.slice(0, 80)}...` : v]),
    ),
  )} ${body}`;
}

/** Sends one request and checks every rule; throws a description of the first broken one. */
async function check(r: HostileRequest): Promise<void> {
  // Rows as they were after the last request that was not refused (nothing else writes).
  rowsSnapshot ??= await counts();
  const before = rowsSnapshot;
  const res = await send(r.op.port === 'health' ? healthPort : apiPort, r);
  const fail = (why: string, extra = ''): never => {
    throw new Error(`${why}\n  request: ${describeRequest(r)}\n  ${extra}`);
  };
  if ('error' in res) return fail(`no HTTP answer: ${res.error}`);
  tally.add(r.op.operationId, res.status);
  const text = res.body.toString('utf8');
  const answer = `answer: ${res.status} ${res.headers['content-type']} ${text.slice(0, 400)}`;
  if (res.status >= 500) fail('a 5xx answer', answer);
  const mediaType = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

  const isProblem = () => {
    if (mediaType !== 'application/problem+json') fail('not problem+json', answer);
    const body = JSON.parse(text) as { status?: number };
    if (!walker.schema('Problem')(body)) fail('not a valid Problem', answer);
    if (body.status !== res.status) fail('problem status differs from the HTTP status', answer);
  };

  /** The operation's declared answer for this status: content type and schema. */
  const declaredAnswer = (): string | null => {
    const declared = walker.response(r.op, res.status);
    if (!declared) return 'status not declared for the operation';
    const content = declared.response.content as Record<string, unknown> | undefined;
    if (!content) return res.body.length > 0 ? 'a body where the spec declares none' : null;
    const key = Object.keys(content).find(
      (k) => k.split(';')[0]!.trim().toLowerCase() === mediaType,
    );
    if (!key) return 'content type not declared';
    if (!/json$/.test(mediaType)) return null;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return 'declared JSON but not JSON';
    }
    const validate = walker.responseValidator(r.op, declared.key, key);
    if (validate && !validate(body)) {
      return `body does not match the declared schema: ${JSON.stringify(validate.errors)}`;
    }
    if (mediaType === 'application/problem+json') isProblem();
    return null;
  };

  if (r.headerOverflow) {
    if (res.status !== 431) fail('an oversized header is not 431', answer);
    isProblem();
  } else {
    const problem = declaredAnswer();
    // A path that no longer names the operation may instead get a generic refusal.
    if (problem !== null && !(r.pathMutated && res.status < 500)) fail(problem, answer);
    if (problem !== null) isProblem();
  }
  const after = await counts();
  rowsSnapshot = after;
  if (res.status >= 400 && after !== before) fail('a refused request changed rows', answer);
  if (res.status < 300 && r.method !== 'GET') {
    await keepAdminSignedIn();
    rowsSnapshot = undefined; // signing in again writes rows
  }
}

// ---------------------------------------------------------------------------------------------
// Building requests

type Auth = 'admin' | 'none' | 'garbage' | 'basic';

function authHeader(auth: Auth): Record<string, string> {
  switch (auth) {
    case 'admin':
      return { authorization: `Bearer ${admin.token}` };
    case 'garbage':
      return { authorization: 'Bearer e30.e30.' };
    case 'basic':
      return { authorization: 'Basic YWRtaW46YWRtaW4=' };
    default:
      return {};
  }
}

interface Plan {
  pathValues: Record<string, string>;
  pathMutation: string | null;
  query: [string, string][];
  body: Json | undefined;
  encoding: BodyEncoding;
  contentType: string | null;
  auth: Auth;
  headerOverflow: boolean;
  requestId: string | null;
  note: string;
}

function build(op: SpecOperation, p: Plan): HostileRequest {
  const path = pathWith(op, p.pathValues) + (p.pathMutation ?? '');
  const query = p.query.map(([k, v]) => `${k}=${v}`).join('&');
  const headers: Record<string, string> = { ...authHeader(p.auth) };
  if (p.requestId !== null) headers['x-request-id'] = p.requestId;
  if (p.headerOverflow) headers['x-filler'] = 'a'.repeat(20_000);
  let body: Buffer | undefined;
  let natural = 'application/json';
  const json = p.body === undefined ? '{}' : jsonText(p.body);
  switch (p.encoding) {
    case 'json':
      body = Buffer.from(json);
      break;
    case 'form':
      body = Buffer.from(encodeForm(p.body ?? {}));
      natural = 'application/x-www-form-urlencoded';
      break;
    case 'broken-json':
      body = Buffer.from(json.slice(0, Math.max(1, Math.floor(json.length / 2))) + ',');
      break;
    case 'deep-json':
      body = Buffer.from('{"a":'.repeat(4_000) + '1' + '}'.repeat(4_000));
      break;
    case 'huge':
      body = Buffer.from(JSON.stringify({ email: 'a'.repeat(70_000) }));
      break;
    case 'gzip-lie':
      body = Buffer.from(json);
      headers['content-encoding'] = 'gzip';
      break;
    case 'none':
      break;
  }
  if (body !== undefined) {
    const ct = p.contentType ?? natural;
    if (ct !== '') headers['content-type'] = ct;
  }
  return {
    op,
    method: op.method,
    target: path + (query ? `?${query}` : ''),
    headers,
    body,
    pathMutated: p.pathMutation !== null,
    headerOverflow: p.headerOverflow,
    note: p.note,
  };
}

function clone(v: Json): Json {
  if (v instanceof RawNumber || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(clone);
  const out: { [k: string]: Json } = {};
  for (const [k, x] of Object.entries(v)) out[k] = clone(x);
  return out;
}

type Mutation =
  | { kind: 'set'; field: string; value: Json }
  | { kind: 'delete'; field: string }
  | { kind: 'extra'; field: string; value: Json }
  | { kind: 'replace'; value: Json }
  | { kind: 'proto'; value: Json };

function mutate(base: Json, mutations: Mutation[]): Json {
  let v = clone(base);
  for (const m of mutations) {
    const obj =
      v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RawNumber)
        ? v
        : null;
    switch (m.kind) {
      case 'replace':
        v = m.value;
        break;
      case 'set':
      case 'extra':
        if (obj)
          Object.defineProperty(obj, m.field, {
            value: m.value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        break;
      case 'delete':
        if (obj) delete obj[m.field];
        break;
      case 'proto':
        if (obj)
          Object.defineProperty(obj, '__proto__', {
            value: { is_admin: true, is_active: false, polluted: m.value },
            enumerable: true,
            writable: true,
            configurable: true,
          });
        break;
    }
  }
  return v;
}

function planArbitrary(op: SpecOperation): fc.Arbitrary<Plan> {
  const example = exampleBody(op);
  const fields = [
    ...new Set([
      ...(example &&
      typeof example.value === 'object' &&
      example.value &&
      !Array.isArray(example.value)
        ? Object.keys(example.value)
        : []),
      ...(op.body
        ? Object.values(op.body.content).flatMap((m) => walker.propertyNames(m.schema))
        : []),
    ]),
  ];
  const field = fields.length ? fc.constantFrom(...fields) : fc.constant('x');
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ kind: fc.constant('set' as const), field, value: hostileJson }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), field }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('extra' as const),
        field: fc.oneof(
          fc.constantFrom('__proto__', 'constructor', 'is_admin', 'id'),
          hostileString,
        ),
        value: hostileJson,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('replace' as const), value: hostileJson }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('proto' as const), value: hostileJson }),
    },
  );
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const defaults = examplePathValues(op);
  const pathValue = (name: string) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(defaults[name]!) },
      { weight: 2, arbitrary: hostileString.map(urlEncode) },
      { weight: 1, arbitrary: fc.constantFrom(...RAW_URL_PIECES) },
      { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_QUERY_NUMBERS).map(urlEncode) },
    );
  const queryParams = op.parameters.filter((p) => p.in === 'query');
  const queryValue = (numeric: boolean) =>
    fc.oneof(
      {
        weight: numeric ? 4 : 1,
        arbitrary: fc.constantFrom(...HOSTILE_QUERY_NUMBERS).map(urlEncode),
      },
      { weight: 2, arbitrary: hostileString.map(urlEncode) },
      { weight: 1, arbitrary: fc.constantFrom(...RAW_URL_PIECES) },
    );
  const query: fc.Arbitrary<[string, string][]> = fc
    .tuple(
      fc.tuple(
        ...queryParams.map((p) =>
          fc.option(
            fc.oneof(
              fc.constant([[p.name, urlEncode(String(p.example ?? ''))]] as [string, string][]),
              queryValue(isNumeric(p.schema)).map((v) => [[p.name, v]] as [string, string][]),
              // The same parameter twice.
              fc.tuple(queryValue(isNumeric(p.schema)), queryValue(isNumeric(p.schema))).map(
                ([a, b]) =>
                  [
                    [p.name, a],
                    [p.name, b],
                  ] as [string, string][],
              ),
            ),
            { freq: 3 },
          ),
        ),
      ),
      fc.option(fc.tuple(hostileString.map(urlEncode), hostileString.map(urlEncode)), { freq: 4 }),
    )
    .map(([ps, extra]) => [
      ...ps.flatMap((x) => x ?? []),
      ...(extra ? [extra as [string, string]] : []),
    ]);
  const encodings: BodyEncoding[] = op.body
    ? [
        'json',
        'json',
        'json',
        'json',
        'json',
        'json',
        'form',
        'broken-json',
        'deep-json',
        'huge',
        'none',
        'gzip-lie',
      ]
    : ['none', 'none', 'none', 'none', 'none', 'json'];
  return fc.record({
    pathValues: fc.record(Object.fromEntries(pathParams.map((p) => [p.name, pathValue(p.name)]))),
    pathMutation: fc.oneof(
      { weight: 9, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.constantFrom(...PATH_MUTATIONS) },
    ),
    query,
    body: fc
      .array(mutation, { maxLength: 3 })
      .map((ms) => (example ? mutate(example.value, ms) : ms.length ? mutate({}, ms) : undefined)),
    encoding: fc.constantFrom(...encodings),
    contentType: fc.oneof(
      { weight: 3, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
    ),
    auth: fc.constantFrom<Auth>(
      'admin',
      'admin',
      'admin',
      'admin',
      'admin',
      'none',
      'garbage',
      'basic',
    ),
    headerOverflow: fc.integer({ min: 0, max: 24 }).map((n) => n === 0),
    requestId: fc.option(
      fc.oneof(
        fc.string({
          unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
          maxLength: 300,
        }),
        fc.constant(''),
      ),
      { freq: 5 },
    ),
    note: fc.constant('property run'),
  });
}

// ---------------------------------------------------------------------------------------------

function plan(op: SpecOperation, over: Partial<Plan>): Plan {
  const example = exampleBody(op);
  return {
    pathValues: examplePathValues(op),
    pathMutation: null,
    query: [],
    body: example?.value,
    encoding: op.body
      ? example?.type === 'application/x-www-form-urlencoded'
        ? 'form'
        : 'json'
      : 'none',
    contentType: null,
    auth: 'admin',
    headerOverflow: false,
    requestId: null,
    note: 'table',
    ...over,
  };
}

test('when every numeric query and body field of every operation gets 1e309, -0, 1.5, 30-digit integers and friends, then each answer is declared, valid and below 500', async () => {
  let sent = 0;
  for (const op of walker.operations) {
    for (const p of op.parameters.filter((x) => x.in === 'query' && isNumeric(x.schema))) {
      for (const n of HOSTILE_QUERY_NUMBERS) {
        await check(
          build(op, plan(op, { query: [[p.name, urlEncode(n)]], note: `${p.name}=${n}` })),
        );
        sent++;
      }
    }
    const example = exampleBody(op);
    for (const [type, media] of Object.entries(op.body?.content ?? {})) {
      for (const field of walker.numericProperties(media.schema)) {
        for (const n of HOSTILE_NUMBERS) {
          const base = type === example?.type ? example.value : {};
          const body = mutate(base, [{ kind: 'set', field, value: new RawNumber(n) }]);
          const encoding = type === 'application/x-www-form-urlencoded' ? 'form' : 'json';
          await check(
            build(op, plan(op, { body, encoding, contentType: type, note: `${field}: ${n}` })),
          );
          sent++;
        }
      }
    }
  }
  expect(sent).toBeGreaterThan(0);
});

test('when every operation gets wrong content types, broken, deep or huge JSON, __proto__ keys, traversal in its path and an oversized header, then each answer is declared, valid and below 500', async () => {
  let sent = 0;
  for (const op of walker.operations) {
    const cases: Partial<Plan>[] = [
      { headerOverflow: true, note: 'oversized header' },
      ...PATH_MUTATIONS.map((m) => ({ pathMutation: m, note: `path + ${m}` })),
      {
        query: [
          ['q', urlEncode("' OR 1=1 --")],
          ['../x', '..%2f'],
        ],
        note: 'SQL and traversal in the query',
      },
      { auth: 'none' as const, note: 'no credentials' },
    ];
    if (op.body) {
      const example = exampleBody(op)!;
      cases.push(
        ...CONTENT_TYPES.map((ct) => ({
          contentType: ct,
          note: `content type ${ct || '(empty)'}`,
        })),
        { encoding: 'broken-json' as const, note: 'broken JSON' },
        { encoding: 'deep-json' as const, note: 'deeply nested JSON' },
        { encoding: 'huge' as const, note: 'body over the limit' },
        { encoding: 'none' as const, note: 'no body' },
        { encoding: 'gzip-lie' as const, note: 'says gzip, is not' },
        { body: mutate(example.value, [{ kind: 'proto', value: true }]), note: '__proto__ key' },
        {
          body: mutate(example.value, [
            { kind: 'extra', field: 'constructor', value: { prototype: { is_admin: true } } },
          ]),
          note: 'constructor.prototype key',
        },
        { body: [], note: 'an array body' },
        { body: 'a string', note: 'a string body' },
        { body: new RawNumber('1e309'), note: 'a number body' },
      );
    }
    for (const c of cases) {
      await check(build(op, plan(op, c)));
      sent++;
    }
  }
  // Nothing reached Object.prototype.
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(({} as Record<string, unknown>).is_admin).toBeUndefined();
  expect(sent).toBeGreaterThan(walker.operations.length * 10);
});

test('when a seeded property run mutates every operation’s documented request, then each answer is declared, valid, below 500, and refusals write nothing', async () => {
  expect(walker.operations.length).toBeGreaterThanOrEqual(19);
  for (const [i, op] of walker.operations.entries()) {
    await fc.assert(
      fc.asyncProperty(planArbitrary(op), async (p) => check(build(op, p))),
      { seed: SEED + i, numRuns: RUNS_PER_OPERATION, endOnFailure: true },
    );
  }
  expect(Object.keys(Object.prototype)).toEqual([]);
});
