import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { baseSpec, findBreakingChanges, majorOf } from '../scripts/spec-breaking';
import { SPEC_FILE } from '../src/paths';

type Doc = Record<string, unknown>;

/** A small spec: one operation with a JSON body, a query parameter and a JSON answer. */
function spec(): Doc {
  return {
    openapi: '3.1.0',
    info: { title: 't', version: '1.2.0' },
    paths: {
      '/things': {
        post: {
          operationId: 'createThing',
          parameters: [
            { name: 'mode', in: 'query', schema: { type: 'string', enum: ['fast', 'safe'] } },
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/New' } } },
          },
          responses: {
            '201': {
              description: 'made',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } },
            },
          },
        },
      },
    },
    components: {
      schemas: {
        New: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string' },
            colour: { type: 'string', enum: ['red', 'blue'] },
            extra: { type: 'object', properties: { note: { type: 'string' } } },
          },
        },
        Thing: {
          allOf: [
            { $ref: '#/components/schemas/New' },
            {
              type: 'object',
              required: ['id'],
              properties: { id: { type: 'string' }, size: { type: 'integer' } },
            },
          ],
        },
      },
    },
  };
}

function changed(edit: (d: Doc & { paths: Doc; components: { schemas: Doc } }) => void): Doc {
  const d = spec() as Doc & { paths: Doc; components: { schemas: Doc } };
  edit(d);
  return d;
}

const schemas = (d: { components: { schemas: Doc } }) =>
  d.components.schemas as Record<string, { properties: Record<string, Doc>; required?: string[] }>;
const op = (d: { paths: Doc }) => (d.paths['/things'] as { post: Doc }).post;

test('when nothing changed, then nothing is reported', () => {
  expect(findBreakingChanges(spec(), spec())).toEqual([]);
});

test('when operations, optional request fields and response fields are added, then nothing is reported', () => {
  const after = changed((d) => {
    d.paths['/other'] = {
      get: { operationId: 'other', responses: { '200': { description: 'ok' } } },
    };
    schemas(d).New!.properties.nickname = { type: 'string' };
    const thing = (d.components.schemas.Thing as { allOf: { properties: Doc }[] }).allOf[1]!;
    thing.properties.weight = { type: 'number' };
    // A new alternative with its own required fields breaks no existing request.
    (op(d).requestBody as { content: Doc }).content['application/json'] = {
      schema: {
        oneOf: [
          { $ref: '#/components/schemas/New' },
          { type: 'object', required: ['copy_of'], properties: { copy_of: { type: 'string' } } },
        ],
      },
    };
  });
  expect(findBreakingChanges(spec(), after)).toEqual([]);
});

test('when an operation is removed, then it is reported', () => {
  const after = changed((d) => delete d.paths['/things']);
  expect(findBreakingChanges(spec(), after)).toEqual([
    { where: 'POST /things', what: 'operation removed (createThing)' },
  ]);
});

test('when an operationId changes, then it is reported (generated SDK method names change)', () => {
  const after = changed((d) => (op(d).operationId = 'makeThing'));
  expect(findBreakingChanges(spec(), after)).toEqual([
    { where: 'POST /things (createThing)', what: 'operationId changed to makeThing' },
  ]);
});

test('when a response field is removed, then it is reported, also through allOf', () => {
  const after = changed((d) => delete schemas(d).New!.properties.colour);
  expect(findBreakingChanges(spec(), after)).toContainEqual({
    where: 'POST /things (createThing) response 201 application/json .colour',
    what: 'response field removed',
  });
});

test('when a request field becomes required, then it is reported', () => {
  const after = changed((d) => (schemas(d).New!.required = ['name', 'colour']));
  expect(findBreakingChanges(spec(), after)).toContainEqual({
    where: 'POST /things (createThing) request application/json .colour',
    what: 'request field became required',
  });
});

test('when a new required request field is added, then it is reported, but not inside a new optional member', () => {
  const after = changed((d) => {
    schemas(d).New!.properties.owner = { type: 'string' };
    schemas(d).New!.required = ['name', 'owner'];
    schemas(d).New!.properties.extra!.required = ['note'];
  });
  const found = findBreakingChanges(spec(), after).map((f) => f.where);
  expect(found).toContain('POST /things (createThing) request application/json .owner');
  // `extra` stays optional, so a client that leaves it out is unaffected by its inner rule.
  expect(found.some((w) => w.endsWith('.extra.note') && w.includes('request'))).toBe(false);
});

test('when a request enum loses a value or a type changes, then it is reported as narrowed', () => {
  const after = changed((d) => {
    schemas(d).New!.properties.colour = { type: 'string', enum: ['red'] };
    schemas(d).New!.properties.name = { type: 'integer' };
  });
  const found = findBreakingChanges(spec(), after);
  expect(found).toContainEqual({
    where: 'POST /things (createThing) request application/json .colour',
    what: 'request field narrowed: values no longer accepted: "blue"',
  });
  expect(found).toContainEqual({
    where: 'POST /things (createThing) request application/json .name',
    what: 'request field narrowed: type string became integer',
  });
  // The same schema is in the answer: a changed type breaks readers too.
  expect(found).toContainEqual({
    where: 'POST /things (createThing) response 201 application/json .name',
    what: 'response field type string became integer',
  });
});

test('when a query parameter becomes required or loses an enum value, then it is reported', () => {
  const after = changed((d) => {
    op(d).parameters = [
      { name: 'mode', in: 'query', required: true, schema: { type: 'string', enum: ['safe'] } },
    ];
  });
  expect(findBreakingChanges(spec(), after)).toEqual([
    { where: 'POST /things (createThing) parameter query mode', what: 'parameter became required' },
    {
      where: 'POST /things (createThing) parameter query mode',
      what: 'parameter narrowed: values no longer accepted: "fast"',
    },
  ]);
});

test('when a success response or a request content type is removed, then it is reported', () => {
  const after = changed((d) => {
    op(d).responses = { '200': { description: 'ok' } };
    (op(d).requestBody as { content: Doc }).content = { 'application/x-www-form-urlencoded': {} };
  });
  const what = findBreakingChanges(spec(), after).map((f) => f.what);
  expect(what).toEqual(
    expect.arrayContaining([
      'response 201 removed',
      'request content type application/json no longer accepted',
    ]),
  );
});

test('when info.version has a major number, then majorOf reads it', () => {
  expect(majorOf('1.4.2')).toBe(1);
  expect(majorOf('0.1.0')).toBe(0);
  expect(majorOf('next')).toBeUndefined();
});

test("when the project's spec is compared with itself, then nothing is reported", () => {
  const doc = YAML.parse(fs.readFileSync(SPEC_FILE, 'utf8')) as Doc;
  expect(findBreakingChanges(doc, structuredClone(doc))).toEqual([]);
});

describe('finding the base spec with git', () => {
  let dir: string;
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {
      cwd: dir,
      stdio: 'pipe',
    });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spec-breaking-'));
    git('init', '-q');
    fs.mkdirSync(path.join(dir, 'openapi'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const commit = (version: string) => {
    fs.writeFileSync(path.join(dir, 'openapi/openapi.yaml'), `info: { version: ${version} }\n`);
    git('add', '.');
    git('commit', '-q', '-m', version);
  };

  test('when there is only one commit, then there is no base and the reason says so', () => {
    commit('1.0.0');
    const { base, reason } = baseSpec(dir, 'openapi/openapi.yaml');
    expect(base).toBeUndefined();
    expect(reason).toMatch(/HEAD~1 does not exist/);
  });

  test('when there is no release tag, then the previous commit is the base', () => {
    commit('1.0.0');
    commit('1.1.0');
    const { base, reason } = baseSpec(dir, 'openapi/openapi.yaml');
    expect(base?.text).toContain('1.0.0');
    expect(reason).toMatch(/previous commit/);
  });

  test('when a release tag exists, then the newest one before HEAD is the base', () => {
    commit('1.0.0');
    git('tag', 'api-v1.0.0');
    commit('1.1.0');
    commit('1.2.0');
    const { base, reason } = baseSpec(dir, 'openapi/openapi.yaml');
    expect(base?.text).toContain('1.0.0');
    expect(reason).toMatch(/api-v1\.0\.0/);
  });

  test('when the clone is shallow, then there is no base and the reason says how to fix it', () => {
    commit('1.0.0');
    commit('1.1.0');
    const shallow = fs.mkdtempSync(path.join(os.tmpdir(), 'spec-breaking-shallow-'));
    try {
      execFileSync('git', ['clone', '-q', '--depth', '1', `file://${dir}`, shallow], {
        stdio: 'pipe',
      });
      const { base, reason } = baseSpec(shallow, 'openapi/openapi.yaml');
      expect(base).toBeUndefined();
      expect(reason).toMatch(/shallow clone/);
    } finally {
      fs.rmSync(shallow, { recursive: true, force: true });
    }
  });
});
