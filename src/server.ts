import 'dotenv/config';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import { ConfigError, loadConfig, type Config } from './config';
import type { Deps } from './deps';
import { createLogger } from './logger';
import { openDatabase } from './wiring/database';

export interface RunningService {
  deps: Deps;
  apiPort: number;
  healthPort: number;
  /** Ordered shutdown: readiness 503, stop accepting, drain, close pools. */
  stop(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** In-flight responses of a server, so shutdown can tell their clients not to reuse the connection. */
function trackResponses(server: http.Server): Set<http.ServerResponse> {
  const active = new Set<http.ServerResponse>();
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    active.add(res);
    res.once('close', () => active.delete(res));
  });
  return active;
}

/**
 * Stops accepting connections at once (new ones are refused), lets in-flight requests finish,
 * then resolves; after timeoutMs whatever is left is cut. Keep-alive connections would hold
 * close() open until their idle timeout, so responses still to be written say
 * `Connection: close`, and connections are closed as soon as they fall idle.
 */
function drain(
  server: http.Server,
  active: Set<http.ServerResponse>,
  timeoutMs: number,
): Promise<'drained' | 'timed out'> {
  return new Promise((resolve) => {
    const closeAfter = (res: http.ServerResponse) => {
      if (!res.headersSent) res.setHeader('Connection', 'close');
    };
    active.forEach(closeAfter);
    // Requests arriving on an already-open keep-alive connection during the drain.
    server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) =>
      closeAfter(res),
    );
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const timer = setTimeout(() => {
      server.closeAllConnections();
      done('timed out');
    }, timeoutMs);
    const done = (outcome: 'drained' | 'timed out') => {
      clearInterval(sweep);
      clearTimeout(timer);
      resolve(outcome);
    };
    server.close(() => done('drained'));
    server.closeIdleConnections();
  });
}

/** The modules behind the service, loaded once the database has been started (see below). */
async function loadService() {
  const [{ createApp, createHealthApp }, { migrate }, { createDeps }, { answerClientError }] =
    await Promise.all([
      import('./app'),
      import('./db/migrator'),
      import('./deps'),
      import('./http/problem'),
    ]);
  return { createApp, createHealthApp, migrate, createDeps, answerClientError };
}

export async function startService(config: Readonly<Config>): Promise<RunningService> {
  const logger = createLogger(config.logLevel);
  // The database is opened before the rest of the service is even loaded: the embedded
  // PostgreSQL initialises in a thread of its own (seconds of initdb on a fresh DATA_DIR), so
  // loading the modules runs meanwhile on the other core. createDeps awaits it.
  const database = openDatabase(config, logger);
  let service: Awaited<ReturnType<typeof loadService>>;
  let deps: Deps;
  try {
    service = await loadService();
    deps = await service.createDeps(config, { logger, database });
  } catch (err) {
    await database.then(
      (d) => d.close(),
      () => undefined,
    );
    throw err;
  }
  const { createApp, createHealthApp, migrate, answerClientError } = service;

  try {
    if (config.migrateOnStart) {
      const applied = await migrate({
        sequelize: deps.db.sequelize,
        lockUrl: deps.migrationLockUrl,
        logger,
      });
      logger.info(
        { applied },
        applied.length ? 'migrations applied' : 'database schema is up to date',
      );
    }
    deps.expiryCleanup.start();
  } catch (err) {
    await deps.close();
    throw err;
  }

  const api = http.createServer(createApp(deps));
  const health = http.createServer(createHealthApp(deps));
  for (const server of [api, health]) server.on('clientError', answerClientError);
  const apiResponses = trackResponses(api);
  const healthResponses = trackResponses(health);
  // Slow-loris protection; keep-alive a little above common load-balancer idle timeouts.
  api.requestTimeout = 30_000;
  api.headersTimeout = 15_000;
  api.keepAliveTimeout = 65_000;
  const apiPort = await listen(api, config.port, config.host);
  const healthPort = await listen(health, config.healthPort, config.host);
  logger.info({ apiPort, healthPort, host: config.host }, 'auth service listening');

  let stopping: Promise<void> | undefined;
  return {
    deps,
    apiPort,
    healthPort,
    stop() {
      stopping ??= (async () => {
        // Readiness answers 503 from here on, so the orchestrator stops routing to us.
        deps.lifecycle.shuttingDown = true;
        const started = Date.now();
        const timeoutMs = config.shutdownTimeoutSeconds * 1000;
        logger.info(
          { timeoutMs, inFlight: apiResponses.size },
          'shutting down: draining in-flight requests',
        );
        const apiDrain = await drain(api, apiResponses, timeoutMs);
        // The health port stays up through the API drain so probes keep seeing 503, not a refusal.
        const healthDrain = await drain(health, healthResponses, 1_000);
        await deps.close();
        logger.info(
          { api: apiDrain, health: healthDrain, ms: Date.now() - started },
          'shutdown complete',
        );
      })();
      return stopping;
    },
  };
}

/** Extra time over SHUTDOWN_TIMEOUT_SECONDS for closing pools before giving up on a clean exit. */
const CLOSE_GRACE_MS = 5_000;

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.message + '\n');
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }

  // Installed before start-up, so a signal during migrations still ends in an orderly stop.
  // Repeats are ignored: a terminal's Ctrl-C reaches both npm and us, and the drain is bounded.
  const state: { service?: RunningService; signal?: NodeJS.Signals } = {};
  const shutdown = (svc: RunningService, signal: NodeJS.Signals) => {
    svc.deps.logger.info({ signal }, 'signal received');
    setTimeout(
      () => {
        svc.deps.logger.error('shutdown did not finish in time; exiting');
        process.exit(1);
      },
      config.shutdownTimeoutSeconds * 1000 + CLOSE_GRACE_MS,
    ).unref();
    svc.stop().then(
      () => process.exit(0),
      (err) => {
        svc.deps.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (state.signal) return;
    state.signal = signal;
    if (state.service) shutdown(state.service, signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  state.service = await startService(config);
  if (state.signal) shutdown(state.service, state.signal);
}

/**
 * V8 lets the old generation grow to about four times what the last full collection kept
 * before collecting it again. Under load that is mostly requests' garbage promoted by young
 * collections: serving GET /me at full speed, a heap of about 36 MB live grew to 130 MB before
 * each full collection, and the process peaked at 261 MB resident. Growing by half instead,
 * the same load peaked at 159 MB for the same CPU per request (569 us against 579 us, best of
 * 3 rounds side by side): full collections of a small live set are short. The flag is read at
 * every full collection, so setting it first thing at run time works for every way the
 * service is started.
 */
const HEAP_GROWING_PERCENT = 50;

/**
 * Runs the service as the process's entry point: `node dist/src/server.js` (the image's
 * command), or `npm start` through scripts/start.mjs, which checks the build first.
 */
export function run(): void {
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  main().catch((err) => {
    process.stderr.write(`auth service failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}

if (require.main === module) run();
