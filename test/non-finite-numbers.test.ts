import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { loadSpec } from '../src/http/spec';
import { signedInAdmin, useTestApp } from './support/test-app';

interface Parameter {
  name: string;
  in: string;
  example?: unknown;
  schema?: { type?: string | string[]; $ref?: string };
  $ref?: string;
}

const spec = loadSpec().document as {
  paths: Record<string, Record<string, { parameters?: Parameter[] } & Record<string, unknown>>>;
  components: { parameters?: Record<string, Parameter>; schemas?: Record<string, unknown> };
};

function resolve<T>(node: T & { $ref?: string }): T {
  if (!node.$ref) return node;
  const [, , section, name] = node.$ref.split('/');
  return (spec.components as Record<string, Record<string, T>>)[section!]![name!]!;
}

function isNumeric(p: Parameter): boolean {
  const schema = resolve(p.schema ?? {});
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.includes('integer') || types.includes('number');
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** Every numeric query or path parameter of every operation, read from the spec. */
const cases = Object.entries(spec.paths).flatMap(([path, item]) =>
  METHODS.filter((m) => item[m]).flatMap((method) => {
    const op = item[method] as { parameters?: Parameter[] };
    const params = [...((item.parameters ?? []) as Parameter[]), ...(op.parameters ?? [])].map(
      (p) => resolve(p),
    );
    return params
      .filter((p) => (p.in === 'query' || p.in === 'path') && isNumeric(p))
      .map((p) => ({ method, path, param: p, pathParams: params.filter((q) => q.in === 'path') }));
  }),
);

const NON_FINITE = ['Infinity', '-Infinity', '1e309', '1e400', '-1e309', 'NaN'];

const t = useTestApp();
let adminToken: string;
beforeAll(async () => {
  adminToken = (await signedInAdmin(t)).token;
});

test('when the spec is read, then it has numeric parameters to check (limit and offset at least)', () => {
  const names = cases.map((c) => `${c.method} ${c.path} ${c.param.name}`);
  expect(names).toEqual(
    expect.arrayContaining([
      'get /api/v1/admin/users limit',
      'get /api/v1/admin/users offset',
      'get /api/v1/admin/audit-log limit',
      'get /api/v1/admin/audit-log offset',
    ]),
  );
});

describe.each(cases)(
  '$method $path, parameter $param.name',
  ({ method, path, param, pathParams }) => {
    test.each(NON_FINITE)('when it is %s, then 422 naming the parameter', async (value) => {
      let url = path;
      for (const p of pathParams) {
        const v = p.name === param.name ? value : String(p.example ?? randomUUID());
        url = url.replace(`{${p.name}}`, encodeURIComponent(v));
      }
      if (param.in === 'query')
        url += `?${encodeURIComponent(param.name)}=${encodeURIComponent(value)}`;
      const res = await (request(t.app) as unknown as Record<string, (u: string) => request.Test>)[
        method
      ]!(url)
        .set('Authorization', `Bearer ${adminToken}`)
        .send(method === 'get' || method === 'delete' ? undefined : {});
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors).toEqual(
        expect.arrayContaining([
          { path: `/${param.in}/${param.name}`, message: expect.any(String) },
        ]),
      );
    });
  },
);
