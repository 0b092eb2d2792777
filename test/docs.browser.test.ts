import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { startTestApp, type TestApp } from './support/test-app';

/**
 * /docs in a real headless Chromium, with every request that is not to 127.0.0.1 blocked:
 * Redoc must render every operation of the contract from files the service serves itself.
 */
jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let t: TestApp;
let server: http.Server;
let base: string;
let browser: Browser;
let shotDir: string;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `The docs test needs Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (Debian/Ubuntu).`,
    );
  }
  t = await startTestApp();
  server = http.createServer(t.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  shotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-docs-'));
}, 120_000);

// Each step only undoes what beforeAll got to, so a failed setup does not hang here.
afterAll(async () => {
  await browser?.close();
  if (server?.listening) await new Promise((resolve) => server.close(resolve));
  await t?.close();
  if (shotDir) fs.rmSync(shotDir, { recursive: true, force: true });
});

interface SpecOperation {
  operationId: string;
  method: string;
  path: string;
  summary: string;
}

function specOperations(): SpecOperation[] {
  const paths = t.deps.spec.document.paths as Record<string, Record<string, { summary: string }>>;
  return t.deps.spec.operations.map((o) => ({
    ...o,
    summary: paths[o.path]![o.method.toLowerCase()]!.summary,
  }));
}

test('when /docs is opened with no internet, then Redoc renders every operation of the contract and fetches nothing from outside', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const outside: string[] = [];
  const loaded: string[] = [];
  const problems: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).hostname === '127.0.0.1') {
      loaded.push(new URL(url).pathname);
      return route.continue();
    }
    outside.push(url);
    return route.abort('internetdisconnected');
  });
  // CSP refusals never reach the network, so they are caught here instead.
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (err) => problems.push(err.message));

  const res = await page.goto(`${base}/docs`);
  expect(res?.status()).toBe(200);
  await page.waitForSelector('[id^="operation/"]', { timeout: 30_000 });

  const rendered = await page.$$eval('[id^="operation/"]', (els) =>
    els.map((el) => ({
      id: el.id,
      heading: el.querySelector('h2')?.textContent?.trim() ?? '',
      verb: el.querySelector('.http-verb')?.getAttribute('type') ?? '',
      path: el.querySelector('.http-verb')?.nextElementSibling?.textContent?.trim() ?? '',
    })),
  );
  const expected = specOperations();
  expect(expected.length).toBeGreaterThan(0);
  for (const op of expected) {
    const found = rendered.find((r) => r.id === `operation/${op.operationId}`);
    expect({ operationId: op.operationId, found }).toEqual({
      operationId: op.operationId,
      found: {
        id: `operation/${op.operationId}`,
        heading: op.summary,
        verb: op.method.toLowerCase(),
        path: op.path,
      },
    });
  }
  expect(rendered).toHaveLength(expected.length);

  const shot = path.join(shotDir, 'docs.png');
  await page.screenshot({ path: shot });
  const png = fs.readFileSync(shot);
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  // IHDR: the image has the viewport's size.
  expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1280, 800]);
  // A blank page compresses to a few KiB; a rendered one is far larger.
  expect(png.length).toBeGreaterThan(20_000);

  expect(outside).toEqual([]);
  expect(problems).toEqual([]);
  expect(loaded).toEqual(
    expect.arrayContaining(['/docs', '/docs/redoc.standalone.js', '/openapi.json']),
  );
  console.log(
    `docs: ${rendered.length} operations rendered, requests ${JSON.stringify(loaded)}, ` +
      `blocked outside requests ${outside.length}, screenshot ${png.length} bytes`,
  );
  await page.close();
});

test('when /docs is served, then its CSP allows scripts, styles and data only from the service itself', async () => {
  const res = await fetch(`${base}/docs`);
  expect(res.status).toBe(200);
  const csp = res.headers.get('content-security-policy') ?? '';
  const directives = Object.fromEntries(
    csp.split(';').map((d) => {
      const [name = '', ...values] = d.trim().split(/\s+/);
      return [name, values];
    }),
  );
  expect(directives['default-src']).toEqual(["'none'"]);
  expect(directives['script-src']).toEqual(["'self'"]);
  expect(directives['connect-src']).toEqual(["'self'"]);
  expect(directives['frame-ancestors']).toEqual(["'none'"]);
  // No host other than our own may appear in any directive.
  expect(csp).not.toMatch(/https?:|\*/);
  const html = await res.text();
  expect(html).toContain('<script src="/docs/redoc.standalone.js"></script>');
  expect(html).not.toMatch(/https?:\/\//);
});
