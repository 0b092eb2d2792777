import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode } from '../src/errors';
import { EMAIL, EMAIL_MAX_LENGTH } from '../src/accounts/email';
import { loadSpec } from '../src/http/spec';

/** Rules of the contract that the linter does not check: client teams depend on them. */
const spec = loadSpec();
const doc = spec.document as {
  paths: Record<string, Record<string, Operation>>;
};
interface MediaType {
  example?: unknown;
  examples?: unknown;
}
interface Operation {
  operationId?: string;
  tags?: string[];
  requestBody?: Ref<{ content: Record<string, MediaType> }>;
  responses: Record<string, Ref<{ content?: Record<string, MediaType> }>>;
  parameters?: Ref<{ name: string; example?: unknown; schema?: { example?: unknown } }>[];
}
type Ref<T> = T | { $ref: string };

function deref<T>(o: Ref<T>): T {
  if (o && typeof o === 'object' && '$ref' in o) {
    return o.$ref
      .split('/')
      .slice(1)
      .reduce<unknown>((a, k) => (a as Record<string, unknown>)[k], spec.document) as T;
  }
  return o as T;
}

const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([, op]) => typeof op === 'object' && op !== null && 'responses' in op)
    .map(([method, op]) => ({ path, method, op })),
);

test('when the spec is loaded, then every operation has a unique operationId and a tag', () => {
  expect(operations.length).toBe(spec.operations.length);
  expect(operations.length).toBeGreaterThan(10);
  const ids = operations.map((o) => o.op.operationId);
  expect(ids.every(Boolean)).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  for (const { op } of operations) expect(op.tags?.length).toBeGreaterThan(0);
});

test('when any request or response has a body, then it carries an example', () => {
  const missing: string[] = [];
  for (const { op } of operations) {
    const body = op.requestBody ? deref(op.requestBody) : undefined;
    for (const [ct, mt] of Object.entries(body?.content ?? {})) {
      if (mt.example === undefined && !mt.examples) missing.push(`${op.operationId} request ${ct}`);
    }
    for (const [status, r] of Object.entries(op.responses)) {
      for (const [ct, mt] of Object.entries(deref(r).content ?? {})) {
        if (mt.example === undefined && !mt.examples)
          missing.push(`${op.operationId} ${status} ${ct}`);
      }
    }
    for (const p of op.parameters ?? []) {
      const param = deref(p);
      if (param.example === undefined && param.schema?.example === undefined) {
        missing.push(`${op.operationId} parameter ${param.name}`);
      }
    }
  }
  expect(missing).toEqual([]);
});

test('when an error response has a body, then it is problem+json', () => {
  const wrong: string[] = [];
  for (const { op } of operations) {
    for (const [status, r] of Object.entries(op.responses)) {
      if (!/^4|^5/.test(status)) continue;
      const types = Object.keys(deref(r).content ?? {});
      // Health probes answer 503 with their own JSON status document, by design.
      if (op.operationId === 'getHealth' || op.operationId === 'getReadiness') continue;
      if (types.some((t) => t !== 'application/problem+json'))
        wrong.push(`${op.operationId} ${status}`);
    }
  }
  expect(wrong).toEqual([]);
});

test('when an operation needs a bearer token, then it declares 401', () => {
  for (const { op } of operations) {
    const secured = JSON.stringify((op as { security?: unknown }).security ?? []).includes(
      'bearerAuth',
    );
    if (secured) expect(Object.keys(op.responses)).toContain('401');
  }
});

/** Every `.ts` file under src/, read once for the error-code scan below. */
function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [fs.readFileSync(p, 'utf8')] : [];
  });
}

test('when the spec lists an error code, then the code names it and something in src raises it', () => {
  const problem = deref<{ properties: { code: { enum?: string[] } } }>({
    $ref: '#/components/schemas/Problem',
  });
  const listed = problem.properties.code.enum ?? [];
  expect(listed.length).toBeGreaterThan(0);
  expect([...listed].sort()).toEqual(Object.values(ErrorCode).sort());
  // The compiler checks the other direction: src/errors.ts accepts only listed codes.
  const src = sourceFiles(path.join(__dirname, '..', 'src')).join('\n');
  const used = new Set([...src.matchAll(/\bErrorCode\.(\w+)\b/g)].map((m) => m[1]));
  const neverRaised = Object.entries(ErrorCode)
    .filter(([name]) => !used.has(name))
    .map(([, code]) => code);
  expect(neverRaised).toEqual([]);
});

test('when the spec checks an email, then it is the same rule the code applies, with white space around', () => {
  const email = deref<{ pattern: string }>({ $ref: '#/components/schemas/Email' });
  const core = EMAIL.source.slice(1, -1); // without ^ and $
  expect(email.pattern).toBe(`^\\s*(?=\\S{1,${EMAIL_MAX_LENGTH}}\\s*$)${core}\\s*$`);
});

test('when an operation accepts a bearer token, then it also lists the oauth2 flow that issues it, with the same scopes', () => {
  const mismatched: string[] = [];
  for (const { op } of operations) {
    const security = (op as { security?: Record<string, string[]>[] }).security ?? [];
    const bearer = security.find((r) => 'bearerAuth' in r)?.bearerAuth;
    const oauth2 = security.find((r) => 'oauth2' in r)?.oauth2;
    // Docs and generators learn from `oauth2` how to get the token `bearerAuth` sends.
    if (bearer && JSON.stringify(oauth2) !== JSON.stringify(bearer)) {
      mismatched.push(`${op.operationId}: add "- oauth2: ${JSON.stringify(bearer)}"`);
    }
  }
  expect(mismatched).toEqual([]);
});

test('when an operation needs a bearer token but does not accept app tokens, then it declares 403 app_token_not_allowed', () => {
  const missing: string[] = [];
  for (const { op } of operations) {
    const security = (op as { security?: Record<string, string[]>[] }).security ?? [];
    if (security.length === 0 || security.some((r) => 'appToken' in r)) continue;
    const forbidden = op.responses['403'];
    const content = forbidden ? deref(forbidden).content?.['application/problem+json'] : undefined;
    const examples = Object.values((content?.examples ?? {}) as Record<string, Ref<unknown>>);
    if (!JSON.stringify(examples.map((e) => deref(e))).includes('app_token_not_allowed')) {
      missing.push(op.operationId!);
    }
  }
  expect(missing).toEqual([]);
});

test('when the spec is loaded again (from the parsed copy kept under its hash), then it is the YAML exactly', async () => {
  const { parse } = await import('yaml');
  const text = fs.readFileSync(path.join(__dirname, '..', 'openapi', 'openapi.yaml'), 'utf8');
  const again = loadSpec();
  expect(again.document).toEqual(parse(text));
  expect(again.yaml).toBe(text);
});

test('when the spec text changes, then it is parsed afresh, never taken from an older copy', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spec-'));
  const file = path.join(dir, 'openapi.yaml');
  try {
    fs.writeFileSync(file, 'openapi: 3.1.0\ninfo: { title: a, version: "1" }\npaths: {}\n');
    expect((loadSpec(file).document.info as { title: string }).title).toBe('a');
    fs.writeFileSync(file, 'openapi: 3.1.0\ninfo: { title: b, version: "1" }\npaths: {}\n');
    expect((loadSpec(file).document.info as { title: string }).title).toBe('b');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
