import fs from 'node:fs';
import type { HandlerMap } from '../http/contract';
import type { SpecDocument } from '../http/spec';

export const REDOC_ASSET_PATH = '/docs/redoc.standalone.js';

/**
 * Redoc's sidebar credit shows a logo from Redocly's CDN; the image hides itself when it fails
 * to load, so pointing it at an empty data URL keeps the page free of third-party requests (and
 * of CSP violations). If a Redoc upgrade moves the URL, the docs browser test notices.
 */
const REDOC_CDN_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';

let redocBundle: string | undefined;
/** Read on first use, so processes that never serve /docs do not hold the bundle. */
function loadRedocBundle(): string {
  redocBundle ??= fs
    .readFileSync(require.resolve('redoc/bundles/redoc.standalone.js'), 'utf8')
    .replaceAll(REDOC_CDN_LOGO, 'data:,');
  return redocBundle;
}

/** Redoc with its bundle served by us: the page works with no internet access. */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'";

function docsPage(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="${REDOC_ASSET_PATH}"></script>
</body>
</html>
`;
}

export function contractHandlers(
  spec: SpecDocument,
): Pick<HandlerMap, 'getOpenApiYaml' | 'getOpenApiJson' | 'getDocs' | 'getDocsBundle'> {
  const info = spec.document.info as { title: string };
  const page = docsPage(`${info.title} API reference`);
  return {
    async getOpenApiYaml() {
      return { status: 200, body: spec.yaml, contentType: 'application/yaml' };
    },
    async getOpenApiJson() {
      return { status: 200, body: spec.document };
    },
    async getDocs() {
      return {
        status: 200,
        body: page,
        contentType: 'text/html',
        headers: { 'Content-Security-Policy': DOCS_CSP },
      };
    },
    async getDocsBundle() {
      return {
        status: 200,
        body: loadRedocBundle(),
        contentType: 'application/javascript',
        headers: { 'Cache-Control': 'public, max-age=3600' },
      };
    },
  };
}
