import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

/** The processes a bench run starts, so that every exit path can stop them (and only them). */
const started = new Set<ChildProcess>();
/** Started in their own process group: stopping them signals the whole group. */
const groupLeaders = new WeakSet<ChildProcess>();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** GET on a fresh connection; the status, or null when nothing answered. */
export function probe(url: string, timeoutMs = 1_000): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(null));
  });
}

export interface Started {
  child: ChildProcess;
  /** Milliseconds from spawn to the first 200 of the readiness URL. */
  readyMs: number;
}

export interface StartOptions {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  readyUrl: string;
  /** stdout and stderr go to this file (a pipe nobody reads would stall the process). */
  logFile: string;
  timeoutMs?: number;
  /** Own process group, so `npm start` and the node it runs stop together. */
  group?: boolean;
}

/** Spawns a process and polls its readiness URL every 10 ms until it answers 200. */
export async function startProcess(o: StartOptions): Promise<Started> {
  const log = fs.openSync(o.logFile, 'a');
  const t0 = performance.now();
  const child = spawn(o.command, o.args, {
    cwd: o.cwd,
    env: o.env,
    stdio: ['ignore', log, log],
    detached: o.group ?? false,
  });
  fs.closeSync(log);
  started.add(child);
  if (o.group) groupLeaders.add(child);
  child.once('exit', () => started.delete(child));
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${o.command} ${o.args.join(' ')} exited early; see ${o.logFile}`);
    }
    if ((await probe(o.readyUrl, 500)) === 200) {
      return { child, readyMs: performance.now() - t0 };
    }
    if (Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(`${o.command} ${o.args.join(' ')} was not ready in time; see ${o.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** SIGTERM (to the group when it has one), then SIGKILL after `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (s: NodeJS.Signals) => {
    try {
      if (groupLeaders.has(child)) process.kill(-child.pid!, s);
      else child.kill(s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((c) => stopProcess(c, 5_000)));
}

/** Peak resident set (VmHWM) of a live process in MiB; null off Linux or once it exited. */
export function peakRssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Runs a command to completion, output to a log file; rejects on a non-zero exit. */
export function run(
  command: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; logFile: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(opts.logFile, 'a');
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    started.add(child);
    child.once('error', reject);
    child.once('exit', (code) => {
      started.delete(child);
      if (code === 0) resolve();
      else
        reject(new Error(`${command} ${args.join(' ')} exited with ${code}; see ${opts.logFile}`));
    });
  });
}

/** Runs a node script that prints one JSON line as its result. */
export function runJson<T>(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      started.delete(child);
      if (code !== 0) return reject(new Error(`${script} exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as T);
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}
