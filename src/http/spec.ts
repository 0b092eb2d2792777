import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT, SPEC_FILE } from '../paths';

export type Port = 'api' | 'health';

export interface SpecDocument {
  yaml: string;
  json: string;
  document: Record<string, unknown>;
  /** The document with only the paths served on one port (paths marked `x-port: health`). */
  forPort(port: Port): Record<string, unknown>;
  /** Every operationId with its method and path, for docs checks and the metrics label set. */
  operations: { operationId: string; method: string; path: string }[];
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const PARSED_CACHE_DIR = path.join(PROJECT_ROOT, 'dist', '.spec-cache');

/**
 * The spec as data. Parsing the YAML took about half a second of every start-up (its JSON
 * form parses in a millisecond), so the parsed form is kept beside the compiled code under the
 * SHA-256 of the YAML text: an edited spec has another name and is parsed afresh, and a tree
 * where dist/ cannot be written (a read-only image) just parses every time.
 */
function parse(yaml: string): Record<string, unknown> {
  const cached = path.join(
    PARSED_CACHE_DIR,
    `${createHash('sha256').update(yaml).digest('hex')}.json`,
  );
  try {
    return JSON.parse(fs.readFileSync(cached, 'utf8')) as Record<string, unknown>;
  } catch {
    // not cached yet (or unreadable): parse below
  }
  // Loaded only on a cache miss: requiring the parser is part of the cost.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml');
  const document = YAML.parse(yaml) as Record<string, unknown>;
  try {
    fs.mkdirSync(PARSED_CACHE_DIR, { recursive: true });
    // Written whole then renamed, so a concurrent start never reads half a file.
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(document));
    fs.renameSync(tmp, cached);
  } catch {
    // read-only tree: parse every time
  }
  return document;
}

export function loadSpec(file = SPEC_FILE): SpecDocument {
  const yaml = fs.readFileSync(file, 'utf8');
  const document = parse(yaml);
  const paths = document.paths as Record<string, Record<string, unknown>>;
  const operations = Object.entries(paths).flatMap(([p, item]) =>
    METHODS.filter((m) => item[m]).map((m) => ({
      operationId: (item[m] as { operationId: string }).operationId,
      method: m.toUpperCase(),
      path: p,
    })),
  );
  const json = JSON.stringify(document);
  return {
    yaml,
    json,
    document,
    operations,
    forPort(port) {
      const copy = JSON.parse(json) as Record<string, unknown>;
      const kept = Object.entries(copy.paths as Record<string, Record<string, unknown>>).filter(
        ([p, item]) => {
          const on = (item['x-port'] as string | undefined) ?? 'api';
          // /health is served on both ports.
          return p === '/health' || on === port;
        },
      );
      copy.paths = Object.fromEntries(kept);
      absoluteFlowUrls(copy);
      return copy;
    },
  };
}

/**
 * The spec's OAuth2 flow URLs are relative to the server (OpenAPI 3.1 admits relative
 * references, and the host differs per deployment), but the 3.1 meta-schema that
 * express-openapi-validator checks the document against types them `format: uri`. The
 * validator never calls these URLs, so its copy gets them resolved against a placeholder host.
 */
function absoluteFlowUrls(doc: Record<string, unknown>): void {
  const schemes = (doc.components as { securitySchemes?: Record<string, unknown> } | undefined)
    ?.securitySchemes;
  for (const scheme of Object.values(schemes ?? {})) {
    const flows = (scheme as { flows?: Record<string, Record<string, unknown>> }).flows;
    for (const flow of Object.values(flows ?? {})) {
      for (const key of ['authorizationUrl', 'tokenUrl', 'refreshUrl']) {
        const url = flow[key];
        if (typeof url === 'string') flow[key] = new URL(url, 'http://localhost').href;
      }
    }
  }
}
