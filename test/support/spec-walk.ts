import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { SpecDocument } from '../../src/http/spec';

/**
 * The spec read as data at test time, so that tests over "every operation" cover operations
 * added later without being edited: operations with their parameters, bodies and responses,
 * $refs resolved, and response schemas compiled with Ajv (JSON Schema 2020-12, as OpenAPI 3.1).
 */

type Obj = Record<string, unknown>;

export interface SpecParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  schema: Obj;
  example?: unknown;
}

export interface SpecOperation {
  operationId: string;
  method: string;
  path: string;
  port: 'api' | 'health';
  secured: boolean;
  parameters: SpecParameter[];
  /** Request body media types with their schema and example, if any. */
  body: { required: boolean; content: Record<string, { schema: Obj; example?: unknown }> } | null;
  responses: Record<string, Obj>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

export class SpecWalker {
  readonly operations: SpecOperation[];
  private readonly ajv: Ajv2020;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly spec: SpecDocument) {
    const doc = spec.document;
    this.ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ ...doc, $id: 'spec.json' } as Obj);
    const globalSecurity = (doc.security as unknown[] | undefined) ?? [];
    const paths = doc.paths as Record<string, Obj>;
    this.operations = Object.entries(paths).flatMap(([path, item]) =>
      METHODS.filter((m) => item[m]).map((method) => {
        const op = item[method] as Obj;
        const params = [
          ...((item.parameters as Obj[] | undefined) ?? []),
          ...((op.parameters as Obj[] | undefined) ?? []),
        ].map((p) => this.deref(p) as unknown as SpecParameter);
        const security = (op.security as unknown[] | undefined) ?? globalSecurity;
        const rb = op.requestBody ? this.deref(op.requestBody as Obj) : null;
        const content = (rb?.content as Record<string, Obj> | undefined) ?? {};
        return {
          operationId: op.operationId as string,
          method: method.toUpperCase(),
          path,
          port: (item['x-port'] as 'health' | undefined) ?? 'api',
          secured: security.some((s) => Object.keys(s as Obj).length > 0),
          parameters: params.map((p) => ({ ...p, schema: this.deref(p.schema) })),
          body: rb
            ? {
                required: rb.required === true,
                content: Object.fromEntries(
                  Object.entries(content).map(([type, media]) => [
                    type,
                    {
                      schema: this.deref(media.schema as Obj),
                      example:
                        media.example ??
                        Object.values((media.examples as Record<string, Obj>) ?? {})[0]?.value,
                    },
                  ]),
                ),
              }
            : null,
          responses: op.responses as Record<string, Obj>,
        };
      }),
    );
  }

  /** Follows local $refs ('#/components/...') until an object without one. */
  deref(node: Obj): Obj {
    let cur = node;
    for (let i = 0; i < 20 && typeof cur?.$ref === 'string'; i++) {
      cur = (cur.$ref as string)
        .slice(2)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<Obj>((o, k) => o[k] as Obj, this.spec.document);
    }
    return cur;
  }

  /** The response an operation declares for a status: exact, then `4XX`-style, then default. */
  response(op: SpecOperation, status: number): { key: string; response: Obj } | null {
    for (const key of [String(status), `${String(status)[0]}XX`, 'default']) {
      const r = op.responses[key];
      if (r) return { key, response: this.deref(r as Obj) };
    }
    return null;
  }

  /** A compiled validator for the schema of a declared response's media type. */
  responseValidator(op: SpecOperation, key: string, mediaType: string): ValidateFunction | null {
    const id = `${op.operationId} ${key} ${mediaType}`;
    if (this.compiled.has(id)) return this.compiled.get(id)!;
    const raw = op.responses[key] as Obj;
    // Point into the document so that nested $refs resolve against it.
    const pointer = (...parts: string[]) =>
      'spec.json#/' + parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
    let base: string;
    if (typeof raw.$ref === 'string') base = 'spec.json' + raw.$ref;
    else base = pointer('paths', op.path, op.method.toLowerCase(), 'responses', key);
    const response = this.deref(raw);
    const media = (response.content as Record<string, Obj> | undefined)?.[mediaType];
    if (!media?.schema) return null;
    const validate = this.ajv.compile({
      $ref: `${base}/content/${mediaType.replace(/~/g, '~0').replace(/\//g, '~1')}/schema`,
    });
    this.compiled.set(id, validate);
    return validate;
  }

  /** Validator for one component schema, e.g. 'Problem'. */
  schema(name: string): ValidateFunction {
    const id = `#${name}`;
    if (!this.compiled.has(id)) {
      this.compiled.set(id, this.ajv.compile({ $ref: `spec.json#/components/schemas/${name}` }));
    }
    return this.compiled.get(id)!;
  }

  /**
   * Names of the numeric fields of a body schema (top-level properties of the object, through
   * allOf/oneOf/anyOf branches).
   */
  numericProperties(schema: Obj): string[] {
    const out = new Set<string>();
    const visit = (s: Obj, depth: number) => {
      if (depth > 5) return;
      const d = this.deref(s);
      for (const k of ['allOf', 'oneOf', 'anyOf'])
        for (const b of (d[k] as Obj[] | undefined) ?? []) visit(b, depth + 1);
      for (const [name, prop] of Object.entries((d.properties as Record<string, Obj>) ?? {})) {
        if (isNumeric(this.deref(prop))) out.add(name);
      }
    };
    visit(schema, 0);
    return [...out];
  }

  /** Property names of a body schema, through allOf/oneOf/anyOf branches. */
  propertyNames(schema: Obj): string[] {
    const out = new Set<string>();
    const visit = (s: Obj, depth: number) => {
      if (depth > 5) return;
      const d = this.deref(s);
      for (const k of ['allOf', 'oneOf', 'anyOf'])
        for (const b of (d[k] as Obj[] | undefined) ?? []) visit(b, depth + 1);
      for (const name of Object.keys((d.properties as Obj) ?? {})) out.add(name);
    };
    visit(schema, 0);
    return [...out];
  }
}

export function isNumeric(schema: Obj): boolean {
  const t = schema.type;
  const types = Array.isArray(t) ? t : [t];
  return types.includes('integer') || types.includes('number');
}
