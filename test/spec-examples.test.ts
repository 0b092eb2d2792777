import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { loadSpec } from '../src/http/spec';

/**
 * Every example in the contract is valid against its schema, checked by Ajv (JSON Schema
 * 2020-12, the dialect of OpenAPI 3.1) independently of the linter: client teams copy these
 * examples, and the mock server answers with them.
 */

type Json = Record<string, unknown>;
const doc = loadSpec().document;

/** OpenAPI's own keywords that are not JSON Schema (`discriminator` only narrows oneOf). */
function jsonSchemaOnly(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(jsonSchemaOnly);
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k]) => k !== 'discriminator')
      .map(([k, v]) => [k, jsonSchemaOnly(v)]),
  );
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats(ajv);
ajv.addSchema(jsonSchemaOnly(doc) as Json, 'spec');

const pointer = (parts: string[]) =>
  '/' + parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

function resolve(node: unknown): Json {
  let n = node as Json;
  while (n && typeof n.$ref === 'string') {
    n = (n.$ref as string)
      .slice(2)
      .split('/')
      .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<unknown>((a, k) => (a as Json)[k], doc) as Json;
  }
  return n;
}

interface Case {
  where: string;
  schemaAt: string;
  example: unknown;
}

/** Each example of a media type, by its location in the document. */
function mediaExamples(where: string, at: string[], media: Json): Case[] {
  const schemaAt = pointer([...at, 'schema']);
  const out: Case[] = [];
  if (media.example !== undefined) out.push({ where, schemaAt, example: media.example });
  for (const [name, ex] of Object.entries((media.examples as Json | undefined) ?? {})) {
    out.push({ where: `${where} (${name})`, schemaAt, example: resolve(ex).value });
  }
  return out;
}

/** The location of a `$ref`'d object, or of the object itself. */
function locate(node: unknown, at: string[]): string[] {
  const ref = (node as Json).$ref;
  return typeof ref === 'string'
    ? ref
        .slice(2)
        .split('/')
        .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))
    : at;
}

function cases(): Case[] {
  const out: Case[] = [];
  const paths = doc.paths as Record<string, Record<string, Json>>;
  for (const [p, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op || typeof op !== 'object' || !('responses' in op)) continue;
      const name = `${String(op.operationId)}`;
      if (op.requestBody) {
        const at = locate(op.requestBody, ['paths', p, method, 'requestBody']);
        for (const [type, media] of Object.entries(
          (resolve(op.requestBody).content as Json) ?? {},
        )) {
          out.push(
            ...mediaExamples(`${name} request ${type}`, [...at, 'content', type], media as Json),
          );
        }
      }
      ((op.parameters as unknown[] | undefined) ?? []).forEach((param, i) => {
        const at = locate(param, ['paths', p, method, 'parameters', String(i)]);
        const resolved = resolve(param);
        if (resolved.example !== undefined) {
          out.push({
            where: `${name} parameter ${String(resolved.name)}`,
            schemaAt: pointer([...at, 'schema']),
            example: resolved.example,
          });
        }
      });
      for (const [status, response] of Object.entries(op.responses as Json)) {
        const at = locate(response, ['paths', p, method, 'responses', status]);
        for (const [type, media] of Object.entries((resolve(response).content as Json) ?? {})) {
          out.push(
            ...mediaExamples(`${name} ${status} ${type}`, [...at, 'content', type], media as Json),
          );
        }
      }
    }
  }
  // Schema-level examples too (`example` on a component schema or one of its properties).
  const schemas = (doc.components as { schemas: Record<string, Json> }).schemas;
  for (const [schemaName, schema] of Object.entries(schemas)) {
    if (schema.example !== undefined) {
      out.push({
        where: `schema ${schemaName}`,
        schemaAt: pointer(['components', 'schemas', schemaName]),
        example: schema.example,
      });
    }
    for (const [prop, propSchema] of Object.entries(
      (schema.properties as Json | undefined) ?? {},
    )) {
      const ex = (propSchema as Json).example;
      if (ex !== undefined && !(propSchema as Json).$ref) {
        out.push({
          where: `schema ${schemaName}.${prop}`,
          schemaAt: pointer(['components', 'schemas', schemaName, 'properties', prop]),
          example: ex,
        });
      }
    }
  }
  return out;
}

const all = cases();

test('when the contract is read, then it has examples to check', () => {
  expect(all.length).toBeGreaterThan(50);
});

test('when each example is validated against its schema, then every one is valid', () => {
  const invalid: string[] = [];
  for (const c of all) {
    const validate = ajv.getSchema(`spec#${c.schemaAt}`);
    if (!validate) {
      invalid.push(`${c.where}: no schema at ${c.schemaAt}`);
      continue;
    }
    if (!validate(c.example)) {
      invalid.push(`${c.where}: ${ajv.errorsText(validate.errors)}`);
    }
  }
  expect(invalid).toEqual([]);
});

test('when an example breaks its schema, then the check reports it', () => {
  const validate = ajv.getSchema('spec#/components/schemas/User')!;
  expect(validate({ id: 'not-a-uuid', email: 'ada@example.com', is_active: 'yes' })).toBe(false);
  expect(ajv.errorsText(validate.errors)).toMatch(/must be boolean|must match format "uuid"/);
});
