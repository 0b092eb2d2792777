// Runs before `npm start` (and the bench): compiles only when the compiled tree may be stale.
//
// Plain JavaScript on purpose: it must run before anything is compiled, and loading the
// TypeScript compiler just to learn that nothing changed costs a second or more. The check
// is a walk over the compiler's inputs: when none of them (nor a folder holding them, whose
// time changes when a file is added, removed or renamed) is newer than the stamp written
// after the last successful build, dist/ is what `tsc` would produce and nothing runs.
// `--force` always compiles. Incremental compilation (tsconfig.build.json) keeps the
// rebuild after a small change short.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');
const INPUT_DIRS = ['src', 'scripts', 'generated'];
const INPUT_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

/** Newest modification time (ms) among the compiler's inputs. */
function newestInput() {
  let newest = 0;
  const visit = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return; // an optional input that does not exist
    }
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p)) visit(path.join(p, name));
    }
  };
  for (const d of INPUT_DIRS) visit(path.join(root, d));
  for (const f of INPUT_FILES) visit(path.join(root, f));
  return newest;
}

function stampTime() {
  try {
    return fs.statSync(stamp).mtimeMs;
  } catch {
    return -1;
  }
}

const force = process.argv.includes('--force');
if (!force && stampTime() >= newestInput()) process.exit(0);

// Taken before compiling: an edit made while tsc runs is newer than the stamp, so it is
// compiled next time.
const startedAt = new Date();
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (r.status !== 0) process.exit(r.status ?? 1);
fs.mkdirSync(path.dirname(stamp), { recursive: true });
fs.writeFileSync(stamp, '');
fs.utimesSync(stamp, startedAt, startedAt);
