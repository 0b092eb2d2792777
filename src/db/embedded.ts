import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { EmbeddedWorkerData, EmbeddedWorkerMessage } from './embedded-worker';

/**
 * Embedded PostgreSQL for zero-setup mode: PGlite (PostgreSQL compiled to WASM, one backend)
 * served over the wire protocol by pglite-socket, so the usual Sequelize + `pg` code runs
 * against it unchanged.
 *
 * PGlite and its socket server run in a worker thread:
 * - PGlite executes every protocol message synchronously in WASM (initdb alone takes ~10 s);
 *   on the main thread that would stall HTTP handling and health checks.
 * - PGlite's CommonJS build loads node built-ins with dynamic `import()`, which jest's VM
 *   sandbox rejects without --experimental-vm-modules; a worker is a plain Node context.
 *
 * Limits of pglite-socket 0.2.x designed around here:
 * - `maxConnections` defaults to 1 (`-m/--max-connections` on the CLI); beyond it Node's
 *   `server.maxConnections` drops the socket (clients see ECONNRESET). We accept
 *   MAX_CONNECTIONS, well above the embedded pool size (2).
 * - All connections share ONE backend session, multiplexed per protocol message through a
 *   global queue. While `db.isInTransaction()` the queue serves only the connection that
 *   opened the transaction; the others wait (so a transaction must never wait for a query on
 *   another connection, or both hang). Session state (SET, LISTEN, prepared statements,
 *   startup parameters such as statement_timeout, which are ignored) is shared.
 * - Outside explicit transactions, extended-protocol batches (Parse/Bind/.../Sync) of two
 *   connections can interleave and clobber the unnamed statement (electric-sql/pglite#1046).
 *   The worker closes that gap by pinning a connection from its first batch message to Sync.
 */

export interface EmbeddedPostgres {
  /** postgres:// URL that pg/Sequelize can connect to (127.0.0.1, ephemeral port). */
  url: string;
  /** Max client connections the socket server accepts; the Sequelize pool must stay below it. */
  maxConnections: number;
  close(): Promise<void>;
}

/** Headroom over the embedded pool (2): migrator/health clients and sockets still closing. */
const MAX_CONNECTIONS = 10;
const HOST = '127.0.0.1';
const LOCK_FILE = 'embedded-postgres.lock';
const PGDATA_DIR = 'pgdata';
/** A lock file without readable content younger than this is being written by a starter. */
const UNREADABLE_LOCK_GRACE_MS = 10_000;
/** close() stops waiting for a clean shutdown after this; WAL recovery handles the rest. */
const CLOSE_TIMEOUT_MS = 15_000;

/** Lock files held by this process; pids repeat across container restarts (often pid 1). */
const heldLocks = new Set<string>();

/**
 * The worker's code is src/db/embedded-worker.ts. Built (`dist/`), it sits beside this file as
 * .js. Run from sources (ts-jest), only the .ts exists and worker threads have no TypeScript
 * loader, so it is transpiled here with the compiler (a dev dependency, present wherever the
 * sources run) and evaluated with a `require` rooted at its own path.
 */
function startWorker(workerData: EmbeddedWorkerData): Worker {
  const options = { workerData, name: 'embedded-postgres' };
  const built = path.join(__dirname, 'embedded-worker.js');
  if (fs.existsSync(built)) return new Worker(built, options);
  const source = path.join(__dirname, 'embedded-worker.ts');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- only when run from sources
  const ts = require('typescript') as typeof import('typescript');
  const { outputText } = ts.transpileModule(fs.readFileSync(source, 'utf8'), {
    fileName: source,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
  });
  const rooted = `(function (require) {\n${outputText}\n})(require('node:module').createRequire(${JSON.stringify(source)}));`;
  return new Worker(rooted, { ...options, eval: true });
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  logger: Logger;
}): Promise<EmbeddedPostgres> {
  const started = Date.now();
  const { logger } = opts;
  const dataDir = path.resolve(opts.dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const releaseLock = acquireLock(dataDir);

  const pgdata = path.join(dataDir, PGDATA_DIR);
  const fresh = !fs.existsSync(path.join(pgdata, 'PG_VERSION'));
  let worker: Worker;
  try {
    worker = startWorker({
      // PGlite creates only the last path segment (non-recursive mkdir): dataDir exists now.
      pgdata,
      host: HOST,
      maxConnections: MAX_CONNECTIONS,
    });
  } catch (err) {
    releaseLock();
    throw err;
  }

  let running = false;
  let startup: ((outcome: { port: number } | { error: Error }) => void) | undefined;
  let closed: (() => void) | undefined;
  worker.on('message', (msg: EmbeddedWorkerMessage) => {
    switch (msg.type) {
      case 'ready':
        startup?.({ port: msg.port });
        break;
      case 'failed':
        startup?.({ error: new Error(msg.message) });
        break;
      case 'warn':
        logger.warn({ err: { message: msg.message } }, 'embedded PostgreSQL socket server error');
        break;
      case 'closed':
        if (msg.error)
          logger.warn({ err: { message: msg.error } }, 'embedded PostgreSQL did not close cleanly');
        closed?.();
        break;
    }
  });
  worker.on('error', (err) => {
    if (startup) startup({ error: err });
    else logger.error({ err: { message: err.message } }, 'embedded PostgreSQL crashed');
  });
  worker.on('exit', (code) => {
    if (running) logger.error({ code }, 'embedded PostgreSQL stopped unexpectedly');
    running = false;
    startup?.({ error: new Error(`worker exited with code ${code}`) });
    closed?.();
  });

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      startup = (outcome) => {
        startup = undefined;
        if ('error' in outcome) reject(outcome.error);
        else resolve(outcome.port);
      };
    });
  } catch (err) {
    await worker.terminate();
    releaseLock();
    throw new Error(
      `The embedded PostgreSQL in ${dataDir} failed to start: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  running = true;

  logger.info(
    {
      dataDir,
      host: HOST,
      port,
      maxConnections: MAX_CONNECTIONS,
      fresh,
      startupMs: Date.now() - started,
    },
    `running on an embedded PostgreSQL (PGlite) in ${dataDir}`,
  );

  let closing: Promise<void> | undefined;
  return {
    url: `postgres://postgres@${HOST}:${port}/postgres`,
    maxConnections: MAX_CONNECTIONS,
    close() {
      closing ??= (async () => {
        try {
          if (running) {
            let timer: NodeJS.Timeout | undefined;
            const done = await new Promise<boolean>((resolve) => {
              closed = () => resolve(true);
              timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS);
              worker.postMessage({ type: 'close' });
            });
            clearTimeout(timer);
            if (!done)
              logger.warn({ dataDir }, 'embedded PostgreSQL did not stop in time; terminating it');
          }
        } finally {
          running = false;
          await worker.terminate();
          releaseLock();
        }
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Data directory lock

interface LockInfo {
  pid: number;
  hostname: string;
  startedAt: string;
}

function readLock(lockPath: string): LockInfo | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(lockPath, 'utf8')) as Partial<LockInfo>;
    if (typeof parsed.pid === 'number' && typeof parsed.hostname === 'string') {
      return { pid: parsed.pid, hostname: parsed.hostname, startedAt: String(parsed.startedAt) };
    }
  } catch {
    // missing, half-written or garbage: handled by the caller
  }
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Linux: a killed process not yet reaped by its parent is a zombie, i.e. dead.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).charAt(0);
    return state !== 'Z';
  } catch {
    return true; // no procfs (macOS, Windows): trust kill(pid, 0)
  }
}

function lockedError(dataDir: string, lockPath: string, detail: string): Error {
  return new Error(
    `The embedded PostgreSQL data directory ${dataDir} is in use by ${detail}. ` +
      `Only one process may open it at a time: stop the other instance or point DATA_DIR elsewhere. ` +
      `If no other instance is running, delete ${lockPath}.`,
  );
}

/** Creates `<dataDir>/embedded-postgres.lock` (with our pid) or throws; returns the release. */
function acquireLock(dataDir: string): () => void {
  const lockPath = path.join(dataDir, LOCK_FILE);
  const hostname = os.hostname();
  const tryCreate = (): boolean => {
    let fd: number;
    try {
      fd = fs.openSync(lockPath, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      const info: LockInfo = { pid: process.pid, hostname, startedAt: new Date().toISOString() };
      fs.writeSync(fd, JSON.stringify(info));
    } finally {
      fs.closeSync(fd);
    }
    return true;
  };

  for (let attempt = 0; !tryCreate(); attempt++) {
    if (heldLocks.has(lockPath)) {
      throw lockedError(dataDir, lockPath, `this process (pid ${process.pid})`);
    }
    const holder = readLock(lockPath);
    if (!holder) {
      let ageMs: number;
      try {
        ageMs = Date.now() - fs.statSync(lockPath).mtimeMs;
      } catch {
        continue; // vanished meanwhile: try again
      }
      if (ageMs < UNREADABLE_LOCK_GRACE_MS) {
        throw lockedError(dataDir, lockPath, 'another process that is starting');
      }
    } else if (holder.hostname !== hostname) {
      // A pid from another host/container cannot be checked: never steal it.
      throw lockedError(dataDir, lockPath, `pid ${holder.pid} on host ${holder.hostname}`);
    } else if (holder.pid !== process.pid && pidAlive(holder.pid)) {
      throw lockedError(dataDir, lockPath, `process ${holder.pid}`);
    }
    if (attempt >= 2)
      throw lockedError(dataDir, lockPath, 'another process (lock keeps reappearing)');
    // Stale: its process is gone, or it carries our own pid from an earlier run (pid 1 in a
    // restarted container) although this process does not hold it. Remove it and retry.
    fs.rmSync(lockPath, { force: true });
  }

  heldLocks.add(lockPath);
  // Best effort if the process exits without close(): the next start sees no lock at all.
  const onExit = (): void => {
    fs.rmSync(lockPath, { force: true });
  };
  process.on('exit', onExit);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    process.off('exit', onExit);
    heldLocks.delete(lockPath);
    const holder = readLock(lockPath);
    if (holder?.pid === process.pid) fs.rmSync(lockPath, { force: true });
  };
}
