import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/paths';

/**
 * Tests that run the real process use the same compiled entry point as the Docker image
 * (`node dist/src/server.js`). The first worker that needs it compiles once per test run;
 * the others wait for its stamp.
 */
export const SERVER_ENTRY = path.join(PROJECT_ROOT, 'dist', 'src', 'server.js');

export async function ensureBuilt(): Promise<void> {
  const run = process.env.TEST_TEMPLATE_DB ?? 'adhoc';
  const stamp = path.join(PROJECT_ROOT, 'dist', `.built-${run}`);
  const lock = path.join(PROJECT_ROOT, `.build-lock-${run}`);
  if (fs.existsSync(stamp)) return;
  let owner = false;
  try {
    fs.mkdirSync(lock);
    owner = true;
  } catch {
    // another worker is building
  }
  if (owner) {
    try {
      execFileSync(
        process.execPath,
        [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: PROJECT_ROOT,
          stdio: 'pipe',
        },
      );
      fs.writeFileSync(stamp, '');
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
    return;
  }
  const deadline = Date.now() + 120_000;
  while (!fs.existsSync(stamp)) {
    if (!fs.existsSync(lock)) throw new Error('the build by another test worker failed');
    if (Date.now() > deadline) throw new Error('timed out waiting for the build');
    await new Promise((r) => setTimeout(r, 200));
  }
}
