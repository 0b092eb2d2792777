import { spawn, type ChildProcess } from 'node:child_process';
import { SERVER_ENTRY } from './build';

export interface RunningProcess {
  child: ChildProcess;
  apiPort: number;
  healthPort: number;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `node dist/src/server.js` (the image's command) with only the given environment
 * plus PATH/HOME, on ephemeral ports, and resolves once it logs that it listens.
 */
export async function startServerProcess(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<RunningProcess> {
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: '0',
      HEALTH_PORT: '0',
      HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );

  const ports = await new Promise<{ apiPort: number; healthPort: number }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start in time:\n${out}`)),
      timeoutMs,
    );
    const check = () => {
      for (const line of out.split('\n')) {
        if (!line.includes('"apiPort"')) continue;
        const parsed = JSON.parse(line) as { apiPort: number; healthPort: number };
        clearTimeout(timer);
        resolve(parsed);
        return;
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    child,
    ...ports,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
  };
}
