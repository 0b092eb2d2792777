import type { Server } from 'node:http';
import express, { type Express, type Request, type Response } from 'express';
import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import OpenAPIBackend, { type Context, type Document } from 'openapi-backend';
import { loadSpec } from '../src/http/spec';

/**
 * `npm run mock`: a stand-in for the service that answers every operation of the spec from
 * its examples, so client teams can build against an operation before it ships. Requests are
 * validated against the spec (422 problem+json like the service's). A development tool only:
 * the service never loads this file, and its own validation stays express-openapi-validator.
 *
 * Pick another declared answer with `Prefer: code=409` and/or `Prefer: example=notConfigured`.
 */

const REQUEST_ID = '00000000-0000-4000-8000-000000000000';

function problem(
  res: Response,
  status: number,
  code: string,
  title: string,
  detail: string,
  extra = {},
) {
  res
    .status(status)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: `https://docs.example.com/problems/${code}`,
        title,
        status,
        detail,
        code,
        request_id: REQUEST_ID,
        ...extra,
      }),
    );
}

function preference(req: Request): { code?: number; example?: string } {
  const prefer = String(req.headers.prefer ?? '');
  const code = /(?:^|[\s,;])code=(\d{3})/.exec(prefer)?.[1];
  const example = /(?:^|[\s,;])example=([\w-]+)/.exec(prefer)?.[1];
  return { code: code ? Number(code) : undefined, example };
}

function hasBearer(c: Context): boolean {
  const header = c.request.headers.authorization;
  return typeof header === 'string' && /^Bearer \S+$/.test(header);
}

function validationProblem(res: Response, errors: ErrorObject[]) {
  problem(
    res,
    422,
    'validation_failed',
    'Unprocessable Content',
    'The request does not match the schema.',
    {
      errors: errors.map((e) => ({
        // openapi-backend roots body errors at /requestBody; the service says /body.
        path: e.instancePath.replace(/^\/requestBody(?=\/|$)/, '/body') || '/body',
        message: e.message ?? 'is invalid',
      })),
    },
  );
}

function isForm(c: Context): boolean {
  return String(c.request.headers['content-type'] ?? '').startsWith(
    'application/x-www-form-urlencoded',
  );
}

function withoutDiscriminators(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDiscriminators);
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k]) => k !== 'discriminator')
      .map(([k, v]) => [k, withoutDiscriminators(v)]),
  );
}

/** Form bodies checked against the operation's form schema (openapi-backend only knows JSON). */
function formValidator(document: Record<string, unknown>): (c: Context) => ErrorObject[] {
  const ajv = new Ajv({
    strict: false,
    allErrors: true,
    validateSchema: false,
    discriminator: true,
  });
  addFormats(ajv);
  // Ajv's discriminator refuses `mapping`; oneOf alone decides the same for these schemas.
  ajv.addSchema(withoutDiscriminators(document) as Record<string, unknown>, 'spec');
  const formRefs = new Map<string, string>();
  for (const item of Object.values(document.paths as Record<string, Record<string, unknown>>)) {
    for (const op of Object.values(item)) {
      const o = op as {
        operationId?: string;
        requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> };
      };
      const ref = o?.requestBody?.content?.['application/x-www-form-urlencoded']?.schema?.$ref;
      if (o?.operationId && ref) formRefs.set(o.operationId, ref);
    }
  }
  return (c) => {
    const ref = formRefs.get(c.operation.operationId ?? '');
    const check = ref ? ajv.getSchema(`spec${ref}`) : undefined;
    if (!check || check(c.request.requestBody)) return [];
    return (check.errors ?? []).map((e) => ({
      ...e,
      instancePath: `/requestBody${e.instancePath}`,
    }));
  };
}

export async function createMockApp(): Promise<Express> {
  const document = loadSpec().document;
  const validateForm = formValidator(structuredClone(document));
  const api = new OpenAPIBackend({
    // openapi-backend checks documents against the OpenAPI 3.0 meta-schema; this spec is 3.1,
    // so that check is off (quick, not strict). Schemas are still compiled for validation.
    definition: document as unknown as Document,
    strict: false,
    quick: true,
    // openapi-backend validates every body against the application/json schema, whatever its
    // content type: form bodies are checked by validateForm instead.
    validate: (c) => !isForm(c),
    ajvOpts: { strict: false },
    customizeAjv: (ajv) => addFormats(ajv),
    handlers: {
      notImplemented: (c: Context, req: Request, res: Response) => {
        const formErrors = isForm(c) ? validateForm(c) : [];
        if (formErrors.length > 0) return validationProblem(res, formErrors);
        const pref = preference(req);
        const { status, mock } = c.api.mockResponseForOperation(c.operation.operationId!, pref);
        const declared = c.operation.responses?.[String(status)] as
          { content?: Record<string, unknown> } | undefined;
        const type = Object.keys(declared?.content ?? {})[0] ?? 'application/json';
        res.status(status);
        if (mock === undefined || status === 204) return res.end();
        if (type.includes('json')) return res.type(type).send(JSON.stringify(mock));
        return res.type(type).send(String(mock));
      },
      validationFail: (c: Context, _req: Request, res: Response) =>
        validationProblem(res, c.validation.errors ?? []),
      unauthorizedHandler: (_c: Context, _req: Request, res: Response) => {
        res.setHeader('WWW-Authenticate', 'Bearer');
        problem(res, 401, 'missing_token', 'Unauthorized', 'An access token is required.');
      },
      notFound: (_c: Context, _req: Request, res: Response) =>
        problem(res, 404, 'not_found', 'Not Found', 'There is nothing at this path.'),
      methodNotAllowed: (_c: Context, _req: Request, res: Response) =>
        problem(
          res,
          405,
          'method_not_allowed',
          'Method Not Allowed',
          'This method is not allowed on this path.',
        ),
    },
  });
  // Any well-formed bearer token will do: the mock has no accounts.
  api.registerSecurityHandler('bearerAuth', hasBearer);
  api.registerSecurityHandler('oauth2', hasBearer);
  await api.init();

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ type: ['application/json', 'application/*+json'], strict: false }));
  app.use(express.urlencoded({ extended: false }));
  app.use((req, res) =>
    api.handleRequest(
      {
        method: req.method,
        path: req.path,
        body: req.body as unknown,
        query: req.query as Record<string, string>,
        headers: req.headers as Record<string, string>,
      },
      req,
      res,
    ),
  );
  app.use((err: { type?: string }, _req: Request, res: Response, _next: unknown) => {
    if (err.type === 'entity.parse.failed') {
      return problem(
        res,
        400,
        'malformed_body',
        'Bad Request',
        'The request body could not be parsed.',
      );
    }
    console.error(err);
    return problem(
      res,
      500,
      'internal_error',
      'Internal Server Error',
      'The mock failed; see its log.',
    );
  });
  return app;
}

export async function startMock(port: number, host = '127.0.0.1'): Promise<Server> {
  const app = await createMockApp();
  return new Promise((resolve) => {
    const server = app.listen(port, host, () => resolve(server));
  });
}

if (require.main === module) {
  const port = Number(process.env.MOCK_PORT ?? 4010);
  const host = process.env.MOCK_HOST ?? '127.0.0.1';
  void startMock(port, host).then(() => {
    console.log(`Mock auth service on http://${host}:${port} (answers from the spec's examples)`);
  });
}
