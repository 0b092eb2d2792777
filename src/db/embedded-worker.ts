/**
 * Worker thread of the embedded PostgreSQL (see embedded.ts): PGlite plus pglite-socket,
 * answering the wire protocol on 127.0.0.1. Started by `startEmbeddedPostgres` only; it talks
 * to its parent through the messages below.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface EmbeddedWorkerData {
  pgdata: string;
  host: string;
  maxConnections: number;
}

export type EmbeddedWorkerMessage =
  | { type: 'ready'; port: number }
  | { type: 'failed'; message: string }
  | { type: 'warn'; message: string }
  | { type: 'closed'; error?: string };

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

function pinExtendedQueryBatches(db: PGlite): PGlite {
  let batchOpen = false;
  const overrides: Partial<PGlite> = {
    async execProtocolRawStream(message, options) {
      const type = message[0]!;
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
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof PGlite];
      const value: unknown = Reflect.get(target, prop, target);
      // PGlite keeps its state in private fields: methods must run on the real instance.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function messageOf(err: unknown): string {
  return String((err as Error | undefined)?.message ?? err);
}

function run(port: NonNullable<typeof parentPort>, data: EmbeddedWorkerData): void {
  const post = (msg: EmbeddedWorkerMessage) => port.postMessage(msg);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  const stop = async () => {
    try {
      if (server) await server.stop(); // detaches clients, rolls back their open transaction
    } finally {
      if (db && !db.closed) await db.close(); // clean shutdown: checkpoint, no recovery next time
    }
  };

  port.on('message', (msg: { type?: string } | null) => {
    if (msg?.type !== 'close') return;
    stop().then(
      () => post({ type: 'closed' }),
      (err: unknown) => post({ type: 'closed', error: messageOf(err) }),
    );
  });

  (async () => {
    db = await PGlite.create({ dataDir: data.pgdata });
    server = new PGLiteSocketServer({
      db: pinExtendedQueryBatches(db),
      host: data.host,
      port: 0, // ephemeral
      maxConnections: data.maxConnections,
    });
    server.addEventListener('error', (event) => {
      post({ type: 'warn', message: messageOf((event as CustomEvent<unknown>).detail) });
    });
    await server.start();
    const conn = server.getServerConn();
    const listening = Number(conn.split(':').pop());
    if (!Number.isInteger(listening) || listening <= 0) throw new Error(`no TCP port: ${conn}`);
    post({ type: 'ready', port: listening });
  })().catch(async (err: unknown) => {
    await stop().catch(() => undefined);
    post({ type: 'failed', message: messageOf(err) });
  });
}

if (parentPort) run(parentPort, workerData as EmbeddedWorkerData);
