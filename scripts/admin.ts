import 'dotenv/config';
import { runAdminCli } from '../src/admin/cli';

/** `npm run admin -- <command>`; `npm run admin -- help` lists the commands. */
runAdminCli(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  env: process.env,
}).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; should a stray handle linger, do not hang the terminal.
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  (err: Error) => {
    console.error(`failed: ${err.message}`);
    process.exitCode = 1;
  },
);
