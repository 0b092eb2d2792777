import autocannon from 'autocannon';
import http from 'node:http';

export interface LoadResult {
  /** 2xx answers per second over the measured window. */
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Anything but a 2xx answer, plus connection errors and timeouts. */
  failures: number;
}

export interface LoadOptions {
  url: string;
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
  /** Requests per second across all connections; unset: as fast as answers come. */
  overallRate?: number;
}

function cannon(o: LoadOptions): Promise<autocannon.Result> {
  return autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.seconds,
    headers: o.headers,
    overallRate: o.overallRate,
  });
}

/** A warm-up run (discarded: JIT, pools, caches), then the measured one. */
export async function load(o: LoadOptions, warmUpSeconds: number): Promise<LoadResult> {
  if (warmUpSeconds > 0) await cannon({ ...o, seconds: warmUpSeconds });
  const r = await cannon(o);
  return {
    perSecond: r['2xx'] / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    failures: r.non2xx + r.errors + r.timeouts,
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent });
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.end(opts.body);
  });
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

export interface StormResult {
  /** Answers with the wanted status per second over the measured window. */
  perSecond: number;
  succeeded: number;
  /** 503 or 429 answers, each followed by a wait of its Retry-After. */
  retried: number;
  /** Any other status or a connection error. */
  failures: number;
  /** Status -> count of the unexpected answers, to say what went wrong. */
  unexpected: Record<string, number>;
}

/**
 * Closed-loop clients: each sends its next request when the previous one is answered, and
 * honours Retry-After on 503 and 429 (as a well-behaved client of a capacity-limited
 * endpoint does). Answers are counted when they arrive inside the measured window (after the
 * warm-up, before its end), so requests in flight at either edge balance out.
 */
export async function storm(o: {
  clients: number;
  warmUpSeconds: number;
  seconds: number;
  expect: number;
  send: (client: number, n: number) => Promise<Reply>;
}): Promise<StormResult> {
  const t0 = performance.now();
  const from = t0 + o.warmUpSeconds * 1000;
  const until = from + o.seconds * 1000;
  const r: StormResult = { perSecond: 0, succeeded: 0, retried: 0, failures: 0, unexpected: {} };
  const inWindow = () => {
    const now = performance.now();
    return now >= from && now < until;
  };
  const client = async (c: number) => {
    for (let n = 0; performance.now() < until; n++) {
      let reply: Reply;
      let counted: boolean;
      try {
        reply = await o.send(c, n);
        counted = inWindow();
      } catch (err) {
        if (inWindow()) {
          r.failures++;
          const k = (err as Error).message;
          r.unexpected[k] = (r.unexpected[k] ?? 0) + 1;
        }
        continue;
      }
      if (reply.status === o.expect) {
        if (counted) r.succeeded++;
      } else if (reply.status === 503 || reply.status === 429) {
        if (counted) r.retried++;
        const wait = Number(reply.headers['retry-after'] ?? 1);
        await new Promise((res) => setTimeout(res, (Number.isFinite(wait) ? wait : 1) * 1000));
      } else if (counted) {
        r.failures++;
        r.unexpected[reply.status] = (r.unexpected[reply.status] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  r.perSecond = r.succeeded / o.seconds;
  return r;
}
