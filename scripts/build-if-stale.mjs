// Runs first in `npm start` (scripts/start.mjs) and the bench: compiles only when the compiled
// tree may be stale. As a command, `--force` always compiles.
//
// Plain JavaScript on purpose: it must run before anything is compiled, and loading the
// TypeScript compiler just to learn that nothing changed costs a second or more. The check
// is a walk over the compiler's inputs: when none of them (nor a folder holding them, whose
// time changes when a file is added, removed or renamed) is newer than the stamp written
// after the last successful build, dist/ is what the compiler would produce and nothing runs.
//
// The compile is an emit without type checking: every input of tsconfig.build.json goes
// through the compiler's single-file transpiler with that config's options. It writes the
// same files as `tsc -p tsconfig.build.json` (the config sets isolatedModules, which makes
// every file compilable on its own), in a fraction of the time: tsc loads and checks the
// whole program with every declaration file it reaches, which on a fresh clone was most of
// `npm start`. Type errors are `npm run typecheck`'s (and CI's) to find; a syntax error
// still stops the start here. `npm run build` stays the checked `tsc` build.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG = 'tsconfig.build.json';
const stamp = path.join(root, 'dist', '.build-stamp');
const INPUT_DIRS = ['src', 'scripts', 'generated'];
const INPUT_FILES = ['tsconfig.json', CONFIG, 'package-lock.json'];

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

/**
 * Emits every input of the build config; false when a file has a syntax error (reported).
 * Every file is emitted, not only the changed ones: a renamed or copied file can keep an old
 * modification time, and the whole emit takes about as long as tsc needs to find what changed.
 */
function emit() {
  const ts = createRequire(import.meta.url)('typescript');
  const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} };
  const config = ts.getParsedCommandLineOfConfigFile(path.join(root, CONFIG), {}, host);
  const formatHost = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => '\n',
  };
  const format = process.stderr.isTTY
    ? ts.formatDiagnosticsWithColorAndContext
    : ts.formatDiagnostics;
  const report = (diagnostics) => process.stderr.write(format(diagnostics, formatHost));
  if (!config || config.errors.length) {
    report(config?.errors ?? []);
    return false;
  }
  const { outDir, rootDir } = config.options;
  // Options about the build as a whole (incremental state, output layout) mean nothing to a
  // single file; the rest (module, target, interop, ...) shape each file's output.
  const options = { ...config.options };
  for (const key of ['incremental', 'tsBuildInfoFile', 'outDir', 'rootDir', 'noEmit']) {
    delete options[key];
  }
  if (options.sourceMap || options.declaration) {
    // The single-file emit below writes JavaScript only.
    process.stderr.write(`${CONFIG}: sourceMap and declaration need the full build (tsc)\n`);
    return false;
  }
  const failed = [];
  for (const file of config.fileNames) {
    if (file.endsWith('.d.ts')) continue; // declarations only: nothing to emit
    if (!file.endsWith('.ts')) {
      process.stderr.write(`${file}: only .ts inputs are emitted here; use tsc\n`);
      return false;
    }
    const out = path.join(outDir, path.relative(rootDir, file)).replace(/\.ts$/, '.js');
    const result = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: options,
      reportDiagnostics: true,
    });
    if (result.diagnostics?.length) {
      failed.push(...result.diagnostics);
      continue;
    }
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, result.outputText);
  }
  if (failed.length) report(failed);
  return failed.length === 0;
}

/** Compiles when forced or when an input is newer than the stamp; false when compiling failed. */
export function buildIfStale({ force = false } = {}) {
  if (!force && stampTime() >= newestInput()) return true;
  // Taken before compiling: an edit made while the compiler runs is newer than the stamp, so
  // it is compiled next time.
  const startedAt = new Date();
  if (!emit()) return false;
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  fs.writeFileSync(stamp, '');
  fs.utimesSync(stamp, startedAt, startedAt);
  return true;
}

/** Whether this file is the command being run (not imported by scripts/start.mjs). */
function isCommand() {
  try {
    return import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isCommand()) {
  process.exit(buildIfStale({ force: process.argv.includes('--force') }) ? 0 : 1);
}
