import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { PROJECT_ROOT } from '../src/paths';

/**
 * Breaking-change check for the OpenAPI document: compares the spec with an earlier version
 * (the last `api-v*` release tag, else the previous commit) and fails on changes that break
 * clients built against it, unless `info.version`'s major number went up.
 *
 * Breaking: a removed operation or changed operationId; a removed success response or
 * response content type; a removed response field or a changed response field type; a
 * request field, parameter or body that becomes required; a request field or parameter whose
 * type or enum is narrowed; a request content type removed. Adding operations, optional
 * request fields and response fields is not breaking.
 */

type Json = Record<string, unknown>;
export interface Finding {
  where: string;
  what: string;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** One flattened view of a schema: every reachable field with its types, enum and requiredness. */
interface Field {
  types: string[];
  enum?: unknown[];
  /** Required here and in every enclosing object (an optional parent makes it optional). */
  required: boolean;
}

function resolve(doc: Json, node: unknown, seen = new Set<string>()): Json {
  let n = node as Json;
  while (n && typeof n === 'object' && typeof n.$ref === 'string') {
    const ref = n.$ref;
    if (seen.has(ref)) return {};
    seen.add(ref);
    n = ref
      .replace(/^#\//, '')
      .split('/')
      .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<unknown>((a, k) => (a as Json | undefined)?.[k], doc) as Json;
  }
  return n ?? {};
}

function typesOf(s: Json): string[] {
  if (Array.isArray(s.type)) return [...(s.type as string[])].sort();
  if (typeof s.type === 'string') return [s.type];
  if (s.const !== undefined) return [s.const === null ? 'null' : typeof s.const];
  return [];
}

function refName(node: unknown): string | undefined {
  const ref = (node as Json | undefined)?.$ref;
  return typeof ref === 'string' ? ref.split('/').pop() : undefined;
}

/** Walks a schema into `out`, keyed by a readable path (`.a.b`, `[]` for items, `|X` for a oneOf branch). */
export function flatten(
  doc: Json,
  schema: unknown,
  at = '',
  required = true,
  out = new Map<string, Field>(),
  depth = 0,
): Map<string, Field> {
  if (depth > 12) return out;
  const s = resolve(doc, schema);
  const prev = out.get(at);
  const enumValues =
    s.const !== undefined ? [s.const] : Array.isArray(s.enum) ? (s.enum as unknown[]) : undefined;
  out.set(at, {
    types: [...new Set([...(prev?.types ?? []), ...typesOf(s)])].sort(),
    enum: prev?.enum ?? enumValues,
    required: (prev?.required ?? false) || required,
  });
  for (const part of (s.allOf as unknown[] | undefined) ?? []) {
    flatten(doc, part, at, required, out, depth + 1);
  }
  for (const key of ['oneOf', 'anyOf'] as const) {
    ((s[key] as unknown[] | undefined) ?? []).forEach((branch, i) => {
      flatten(doc, branch, `${at}|${refName(branch) ?? i}`, required, out, depth + 1);
    });
  }
  const req = new Set((s.required as string[] | undefined) ?? []);
  for (const [name, prop] of Object.entries((s.properties as Json | undefined) ?? {})) {
    flatten(doc, prop, `${at}.${name}`, required && req.has(name), out, depth + 1);
  }
  if (s.items && typeof s.items === 'object') {
    flatten(doc, s.items, `${at}[]`, required, out, depth + 1);
  }
  if (s.additionalProperties && typeof s.additionalProperties === 'object') {
    flatten(doc, s.additionalProperties, `${at}{}`, false, out, depth + 1);
  }
  return out;
}

interface Operation {
  key: string;
  op: Json;
}

function operations(doc: Json): Map<string, Operation> {
  const out = new Map<string, Operation>();
  for (const [p, item] of Object.entries((doc.paths as Json | undefined) ?? {})) {
    for (const m of METHODS) {
      const op = (item as Json)[m] as Json | undefined;
      if (op) out.set(`${m.toUpperCase()} ${p}`, { key: `${m.toUpperCase()} ${p}`, op });
    }
  }
  return out;
}

function params(doc: Json, op: Json, pathItem: Json): Map<string, Json> {
  const all = [
    ...((pathItem.parameters as unknown[] | undefined) ?? []),
    ...((op.parameters as unknown[] | undefined) ?? []),
  ].map((p) => resolve(doc, p));
  return new Map(all.map((p) => [`${String(p.in)} ${String(p.name)}`, p]));
}

function content(doc: Json, holder: unknown): Json {
  return (resolve(doc, holder).content as Json | undefined) ?? {};
}

function removedValues(before: unknown[] | undefined, after: unknown[] | undefined): unknown[] {
  if (!before) return after ? ['(any value)'] : [];
  if (!after) return [];
  return before.filter((v) => !after.some((w) => JSON.stringify(w) === JSON.stringify(v)));
}

function narrowed(before: Field, after: Field): string | undefined {
  const lost = before.types.filter((t) => !after.types.includes(t));
  // integer fits in number: widening integer to number is fine, the reverse is not.
  const reallyLost = lost.filter((t) => !(t === 'integer' && after.types.includes('number')));
  if (after.types.length > 0 && reallyLost.length > 0) {
    return `type ${before.types.join('|')} became ${after.types.join('|')}`;
  }
  const gone = removedValues(before.enum, after.enum);
  if (gone.length > 0)
    return `values no longer accepted: ${gone.map((v) => JSON.stringify(v)).join(', ')}`;
  return undefined;
}

/** The enclosing path: `.a.b` -> `.a`, `.a[]` -> `.a`, `|X` -> ``. */
function parentOf(p: string): string {
  return p.replace(/(\.[^.|[\]{}]+|\[\]|\{\}|\|[^.|[\]{}]+)$/, '');
}

/** A member, an item or a map value; not the body itself and not a oneOf alternative. */
function isField(p: string): boolean {
  return p !== '' && !/\|[^.|[\]{}]+$/.test(p);
}

function compareRequest(
  base: Json,
  head: Json,
  where: string,
  a: unknown,
  b: unknown,
  out: Finding[],
) {
  const before = flatten(base, a);
  const after = flatten(head, b);
  for (const [p, field] of after) {
    const old = before.get(p);
    // Inside a new optional member or a new oneOf alternative, required fields break nobody.
    if (field.required && isField(p) && !old?.required && before.has(parentOf(p))) {
      out.push({
        where: `${where} ${p}`,
        what: old ? 'request field became required' : 'new required request field',
      });
    }
    if (old) {
      const why = narrowed(old, field);
      if (why)
        out.push({ where: `${where} ${p || '(body)'}`, what: `request field narrowed: ${why}` });
    }
  }
}

function compareResponse(
  base: Json,
  head: Json,
  where: string,
  a: unknown,
  b: unknown,
  out: Finding[],
) {
  const before = flatten(base, a);
  const after = flatten(head, b);
  for (const [p, field] of before) {
    const now = after.get(p);
    if (!now) {
      // A removed oneOf branch or a removed field: clients reading it break either way.
      if (p !== '') out.push({ where: `${where} ${p}`, what: 'response field removed' });
      continue;
    }
    if (field.types.length && now.types.length && field.types.join() !== now.types.join()) {
      out.push({
        where: `${where} ${p || '(body)'}`,
        what: `response field type ${field.types.join('|')} became ${now.types.join('|')}`,
      });
    }
    if (field.required && !now.required && p !== '') {
      out.push({ where: `${where} ${p}`, what: 'response field no longer always present' });
    }
  }
}

export function findBreakingChanges(base: Json, head: Json): Finding[] {
  const out: Finding[] = [];
  const before = operations(base);
  const after = operations(head);
  for (const [key, { op }] of before) {
    const now = after.get(key);
    if (!now) {
      out.push({ where: key, what: `operation removed (${String(op.operationId)})` });
      continue;
    }
    const where = `${key} (${String(op.operationId)})`;
    if (op.operationId !== now.op.operationId) {
      out.push({ where, what: `operationId changed to ${String(now.op.operationId)}` });
    }
    const [, path] = key.split(' ') as [string, string];
    const oldParams = params(base, op, (base.paths as Json)[path] as Json);
    const newParams = params(head, now.op, (head.paths as Json)[path] as Json);
    for (const [name, p] of newParams) {
      const old = oldParams.get(name);
      if (p.required === true && old?.required !== true) {
        out.push({
          where: `${where} parameter ${name}`,
          what: old ? 'parameter became required' : 'new required parameter',
        });
      }
      if (old) {
        const why = narrowed(flatten(base, old.schema).get('')!, flatten(head, p.schema).get('')!);
        if (why)
          out.push({ where: `${where} parameter ${name}`, what: `parameter narrowed: ${why}` });
      }
    }
    const oldBody = op.requestBody ? resolve(base, op.requestBody) : undefined;
    const newBody = now.op.requestBody ? resolve(head, now.op.requestBody) : undefined;
    if (newBody?.required === true && oldBody?.required !== true) {
      out.push({ where, what: 'request body became required' });
    }
    const oldReq = content(base, oldBody);
    const newReq = content(head, newBody);
    for (const [type, media] of Object.entries(oldReq)) {
      const next = newReq[type] as Json | undefined;
      if (!next) out.push({ where, what: `request content type ${type} no longer accepted` });
      else
        compareRequest(
          base,
          head,
          `${where} request ${type}`,
          (media as Json).schema,
          next.schema,
          out,
        );
    }
    const oldRes = (op.responses as Json | undefined) ?? {};
    const newRes = (now.op.responses as Json | undefined) ?? {};
    for (const [status, response] of Object.entries(oldRes)) {
      const next = newRes[status];
      if (!next) {
        if (/^[23]/.test(status)) out.push({ where, what: `response ${status} removed` });
        continue;
      }
      const nextContent = content(head, next);
      for (const [type, media] of Object.entries(content(base, response))) {
        const m = nextContent[type] as Json | undefined;
        if (!m) {
          out.push({ where, what: `response ${status} ${type} removed` });
          continue;
        }
        compareResponse(
          base,
          head,
          `${where} response ${status} ${type}`,
          (media as Json).schema,
          m.schema,
          out,
        );
      }
    }
  }
  return out;
}

export function majorOf(version: unknown): number | undefined {
  const m = /^(\d+)\./.exec(String(version ?? ''));
  return m ? Number(m[1]) : undefined;
}

export interface BaseSpec {
  ref: string;
  text: string;
}

/**
 * The spec to compare with: SPEC_BASE_REF if set, else the newest `api-v*` tag that is an
 * ancestor of HEAD, else HEAD~1. Undefined (with the reason) when git cannot provide one, as in
 * a shallow clone or on the first commit.
 */
export function baseSpec(
  cwd: string,
  file: string,
  explicit?: string,
): { base?: BaseSpec; reason: string } {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  let ref = explicit;
  let reason = explicit ? `the given base ${explicit}` : '';
  if (!ref) {
    try {
      const tag = git('describe', '--tags', '--abbrev=0', '--match', 'api-v*', 'HEAD~1');
      if (tag) {
        ref = tag;
        reason = `the last release tag ${tag}`;
      }
    } catch {
      // no release tag yet (or no HEAD~1): fall back below
    }
  }
  if (!ref) {
    ref = 'HEAD~1';
    reason = 'the previous commit (HEAD~1); no api-v* release tag found';
  }
  try {
    git('rev-parse', '--verify', '--quiet', `${ref}^{commit}`);
  } catch {
    let shallow = false;
    try {
      shallow = git('rev-parse', '--is-shallow-repository') === 'true';
    } catch {
      // not a git checkout at all
    }
    return {
      reason: shallow
        ? `${ref} is not in this shallow clone (fetch more history, e.g. git fetch --deepen=1, or set SPEC_BASE_REF)`
        : `${ref} does not exist (first commit, or not a git checkout)`,
    };
  }
  try {
    return { base: { ref, text: git('show', `${ref}:${file}`) }, reason };
  } catch {
    return { reason: `${file} does not exist at ${ref}: nothing to compare with` };
  }
}

function main(): number {
  const root = PROJECT_ROOT;
  const file = 'openapi/openapi.yaml';
  const argBase = process.argv.find((a) => a.startsWith('--base='))?.slice('--base='.length);
  const { base, reason } = baseSpec(root, file, argBase ?? process.env.SPEC_BASE_REF);
  if (!base) {
    console.log(`spec-breaking: skipped, no earlier spec to compare with: ${reason}.`);
    return 0;
  }
  const before = YAML.parse(base.text) as Json;
  const after = YAML.parse(fs.readFileSync(path.join(root, file), 'utf8')) as Json;
  const v0 = (before.info as Json | undefined)?.version;
  const v1 = (after.info as Json | undefined)?.version;
  const findings = findBreakingChanges(before, after);
  console.log(
    `spec-breaking: comparing ${file} with ${reason}: version ${String(v0)} -> ${String(v1)}.`,
  );
  if (findings.length === 0) {
    console.log('spec-breaking: no breaking changes.');
    return 0;
  }
  for (const f of findings) console.log(`  BREAKING ${f.where}: ${f.what}`);
  const m0 = majorOf(v0);
  const m1 = majorOf(v1);
  if (m0 !== undefined && m1 !== undefined && m1 > m0) {
    console.log(
      `spec-breaking: ${findings.length} breaking change(s), allowed by the major version change.`,
    );
    return 0;
  }
  console.log(
    `spec-breaking: ${findings.length} breaking change(s). Make the change compatible, or raise info.version's major number and say why in CHANGELOG.md.`,
  );
  return 1;
}

if (require.main === module) process.exitCode = main();
