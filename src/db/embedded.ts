import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

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

interface WorkerData {
  pgdata: string;
  host: string;
  maxConnections: number;
  pgliteEntry: string;
  socketEntry: string;
}

type WorkerMessage =
  | { type: 'ready'; port: number }
  | { type: 'failed'; message: string }
  | { type: 'warn'; message: string }
  | { type: 'closed'; error?: string };

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
    const workerData: WorkerData = {
      // PGlite creates only the last path segment (non-recursive mkdir): dataDir exists now.
      pgdata,
      host: HOST,
      maxConnections: MAX_CONNECTIONS,
      pgliteEntry: require.resolve('@electric-sql/pglite'),
      socketEntry: require.resolve('@electric-sql/pglite-socket'),
    };
    worker = new Worker(WORKER_SOURCE, { eval: true, workerData, name: 'embedded-postgres' });
  } catch (err) {
    releaseLock();
    throw err;
  }

  let running = false;
  let startup: ((outcome: { port: number } | { error: Error }) => void) | undefined;
  let closed: (() => void) | undefined;
  worker.on('message', (msg: WorkerMessage) => {
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

// ---------------------------------------------------------------------------------------------
// Worker: PGlite + pglite-socket. Plain JS, because a worker cannot run this .ts file under
// ts-jest and the built output must not depend on a second module path.

const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { PGlite } = require(workerData.pgliteEntry);
const { PGLiteSocketServer } = require(workerData.socketEntry);

// pglite-socket keeps a connection's ownership of the single backend only while
// db.isInTransaction(); between Parse and Sync the backend is not in a transaction block, so
// another connection's Parse could replace the unnamed statement before our Bind
// (electric-sql/pglite#1046). The server only sees this facade, which reports "in transaction"
// from a connection's first extended-query message until its Sync, so the queue keeps serving
// that connection until the batch ends. If the connection vanishes mid-batch the server calls
// exec('ROLLBACK'): the facade first sends the missing Sync, which ends the batch and any
// ignore-till-Sync error state, then rolls back only if a transaction is really open.
const BATCH_MESSAGES = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]); // P B D E C H
const SYNC = 0x53; // S
const QUERY = 0x51; // Q
function pinExtendedQueryBatches(db) {
  let batchOpen = false;
  const overrides = {
    async execProtocolRawStream(message, options) {
      const type = message[0];
      try {
        await db.execProtocolRawStream(message, options);
      } finally {
        if (BATCH_MESSAGES.has(type)) batchOpen = true;
        else if (type === SYNC || type === QUERY) batchOpen = false;
      }
    },
    async exec(query, options) {
      if (batchOpen) {
        await db.runExclusive(() => db.execProtocolRaw(new Uint8Array([SYNC, 0, 0, 0, 4])));
        batchOpen = false;
      }
      if (/^\s*rollback\s*$/i.test(query) && !db.isInTransaction()) return [];
      return db.exec(query, options);
    },
    isInTransaction() {
      return batchOpen || db.isInTransaction();
    },
  };
  return new Proxy(db, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop];
      const value = Reflect.get(target, prop, target);
      // PGlite keeps its state in private fields: methods must run on the real instance.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

let db;
let server;
async function stop() {
  try {
    if (server) await server.stop(); // detaches clients, rolls back their open transaction
  } finally {
    if (db && !db.closed) await db.close(); // clean shutdown: checkpoint, no recovery next time
  }
}

parentPort.on('message', (msg) => {
  if (!msg || msg.type !== 'close') return;
  stop().then(
    () => parentPort.postMessage({ type: 'closed' }),
    (err) => parentPort.postMessage({ type: 'closed', error: String((err && err.message) || err) }),
  );
});

(async () => {
  db = await PGlite.create({ dataDir: workerData.pgdata });
  server = new PGLiteSocketServer({
    db: pinExtendedQueryBatches(db),
    host: workerData.host,
    port: 0, // ephemeral
    maxConnections: workerData.maxConnections,
  });
  server.addEventListener('error', (event) => {
    const err = event.detail;
    parentPort.postMessage({ type: 'warn', message: String((err && err.message) || err) });
  });
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  if (!Number.isInteger(port) || port <= 0) throw new Error('no TCP port: ' + server.getServerConn());
  parentPort.postMessage({ type: 'ready', port });
})().catch(async (err) => {
  await stop().catch(() => undefined);
  parentPort.postMessage({ type: 'failed', message: String((err && err.message) || err) });
});
`;
