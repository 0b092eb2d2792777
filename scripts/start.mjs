// `npm start`: compiles first when the sources changed since the last build
// (build-if-stale.mjs), then runs the compiled service in this same process. One process
// rather than a `prestart` one and then the service's own saves a Node start-up on every
// `npm start`; signals, exit codes and output are the service's own either way.
import { createRequire } from 'node:module';
import { buildIfStale } from './build-if-stale.mjs';

if (!buildIfStale()) process.exit(1);
createRequire(import.meta.url)('../dist/src/server.js').run();
