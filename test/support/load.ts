import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';

/** One request of the load: what it was, what came back, when it started and how long it took. */
export interface Sample {
  op: 'register' | 'login' | 'me';
  /** HTTP status, or 0 when the client gave up (no answer within the client timeout). */
  status: number;
  retryAfter: string | null;
  startedAt: number;
  ms: number;
}

export interface Load {
  samples: Sample[];
  /** Email and password of every registration answered 201. */
  acknowledged: { email: string; password: string }[];
  stop(): Promise<void>;
}

/** Serves an Express app on an ephemeral 127.0.0.1 port; close() ends every connection. */
export async function serve(
  app: RequestListener,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Longer than any answer the service may take, so a hang shows as status 0, not a stuck test. */
const CLIENT_TIMEOUT_MS = 10_000;

async function timed(
  op: Sample['op'],
  samples: Sample[],
  url: string,
  init: RequestInit,
): Promise<{ status: number; body: unknown }> {
  const startedAt = Date.now();
  let status = 0;
  let retryAfter: string | null = null;
  let body: unknown = null;
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
    status = res.status;
    retryAfter = res.headers.get('retry-after');
    const text = await res.text();
    body = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    status = 0;
  }
  samples.push({ op, status, retryAfter, startedAt, ms: Date.now() - startedAt });
  return { status, body };
}

/**
 * Steady register -> login -> me cycles from `workers` concurrent clients until stop().
 * Emails are unique per run (prefix + counter), so the load is the same from run to run.
 */
export function steadyLoad(baseUrl: string, opts: { workers: number; prefix: string }): Load {
  const samples: Sample[] = [];
  const acknowledged: Load['acknowledged'] = [];
  let running = true;
  let n = 0;
  const json = (body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const worker = async () => {
    while (running) {
      const email = `${opts.prefix}-${n++}@example.com`;
      const password = `load-password-${n}`;
      const reg = await timed(
        'register',
        samples,
        `${baseUrl}/api/v1/auth/register`,
        json({ email, password }),
      );
      if (reg.status !== 201) continue;
      acknowledged.push({ email, password });
      const login = await timed(
        'login',
        samples,
        `${baseUrl}/api/v1/auth/token`,
        json({ email, password }),
      );
      if (login.status !== 200) continue;
      const token = (login.body as { access_token: string }).access_token;
      await timed('me', samples, `${baseUrl}/api/v1/auth/me`, {
        headers: { authorization: `Bearer ${token}` },
      });
    }
  };
  const workers = Array.from({ length: opts.workers }, worker);
  return {
    samples,
    acknowledged,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** Resolves once `probe` returns true, checking every `everyMs`; rejects after `timeoutMs`. */
export async function until(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
