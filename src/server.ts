import 'dotenv/config';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, createHealthApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
import { migrate } from './db/migrator';
import { createDeps, type Deps } from './deps';

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

function closeServer(server: http.Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    // Keep-alive connections that are idle would hold close() open.
    server.closeIdleConnections();
  });
}

export async function startService(config: Readonly<Config>): Promise<RunningService> {
  const deps = await createDeps(config);
  const { logger } = deps;
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
    await deps.passwords.warmUp();
  } catch (err) {
    await deps.close();
    throw err;
  }

  const api = http.createServer(createApp(deps));
  const health = http.createServer(createHealthApp(deps));
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
        deps.lifecycle.shuttingDown = true;
        const timeoutMs = config.shutdownTimeoutSeconds * 1000;
        logger.info({ timeoutMs }, 'shutting down: draining in-flight requests');
        await closeServer(api, timeoutMs);
        await closeServer(health, 1_000);
        await deps.close();
        logger.info('shutdown complete');
      })();
      return stopping;
    },
  };
}

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
  const service = await startService(config);
  const onSignal = (signal: NodeJS.Signals) => {
    service.deps.logger.info({ signal }, 'signal received');
    service.stop().then(
      () => process.exit(0),
      (err) => {
        service.deps.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`auth service failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
