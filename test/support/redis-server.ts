import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

/**
 * A redis-server of the test's own (never the shared one), without persistence, on a free
 * port: tests may flush it, restart it empty or freeze it without touching anyone else's data.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  /** FLUSHDB through a separate connection. */
  flush(): Promise<void>;
  /** Stops the server and starts an empty one on the same port (a restart without persistence). */
  restart(): Promise<void>;
  /** SIGSTOP: the connection stays open but nothing answers. */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start:\n${out}`));
    }, 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${out}`));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-redis-'));
  const port = await freePort();
  let child = await launch(port, dir);
  const url = `redis://127.0.0.1:${port}/0`;
  const kill = async () => {
    const c = child;
    // A frozen server ignores SIGTERM until it runs again.
    c.kill('SIGCONT');
    c.kill('SIGKILL');
    await exited(c);
  };
  return {
    url,
    port,
    async flush() {
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        await admin.flushdb();
      } finally {
        admin.disconnect();
      }
    },
    async restart() {
      await kill();
      child = await launch(port, dir);
    },
    freeze() {
      child.kill('SIGSTOP');
    },
    thaw() {
      child.kill('SIGCONT');
    },
    async stop() {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
