// `npm start`: compiles first when the sources changed since the last build
// (build-if-stale.mjs), then runs the compiled service in this same process. One process
// rather than a `prestart` one and then the service's own saves a Node start-up on every
// `npm start`; signals, exit codes and output are the service's own either way.
//
// package.json runs it with `--liftoff-only`: WebAssembly stays on V8's baseline compiler.
// The only WebAssembly of note here is the embedded PostgreSQL (PGlite, zero-setup mode),
// whose 9 MB module V8 otherwise re-compiles with its optimising compiler in the background
// while it starts: initialising a fresh DATA_DIR took 4.7 s and 4.7 s of CPU with it, 4.1 s
// and 3.2 s without, and its queries were no slower over a thousand upserts. The image's
// command (`node dist/src/server.js`, external PostgreSQL) does not use it.
import { createRequire } from 'node:module';
import { buildIfStale } from './build-if-stale.mjs';

if (!buildIfStale()) process.exit(1);
createRequire(import.meta.url)('../dist/src/server.js').run();
