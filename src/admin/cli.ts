import pino from 'pino';
import { assertEmail, normaliseEmail } from '../accounts/email';
import { ConfigError, loadConfig } from '../config';
import type { Deps } from '../deps';
import { AppError } from '../errors';
import { createLogger } from '../logger';
import { CLI_ACTOR } from './audit-log.repository';
import { toDiscogsConfig } from './admin.views';
import { canPrompt, promptHidden, promptVisible, PromptAborted } from './prompt';

/** sysexits(3) codes, so scripts can tell a typo from bad data from an outage. */
export const EXIT = { ok: 0, failure: 1, usage: 64, dataError: 65 } as const;

export const USAGE = `usage: npm run admin -- <command> [options]

commands:
  create-admin --email <email>  Create an administrator, or promote (and reactivate) an
                                existing account, which keeps its password. The password of
                                a new account comes from ADMIN_PASSWORD or, in a terminal,
                                a prompt; never from the command line.
  discogs-setup                 Set the Discogs consumer key and secret, from
                                DISCOGS_CONSUMER_KEY and DISCOGS_CONSUMER_SECRET or prompts.
  discogs-show [--json]         Show whether Discogs credentials are set (key masked; the
                                secret is never shown).
  reencrypt-secrets             Re-encrypt every stored secret under ENCRYPTION_MASTER_KEY;
                                values sealed with a key from ENCRYPTION_PREVIOUS_KEYS must
                                still open. All or nothing; values already under the current
                                key are left alone.
  help                          Show this text.

exit codes: 0 done, 64 usage error, 65 invalid input, 1 failure.`;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

// --password, --admin-password, --pass, -p ...: refused before anything else is read.
const PASSWORD_ARG = /^(?:-{1,2}[a-z-]*pass|-p)/i;

const NO_PASSWORD_ARGS =
  'passwords are never taken from the command line (shell history and the process list would ' +
  'keep them): set ADMIN_PASSWORD, or run the command in a terminal to be prompted';

/** `--name value` / `--name=value` / `--flag`. Never echoes an argument: it may be a secret. */
function parseOptions(
  args: string[],
  valued: string[],
  flags: string[] = [],
): Record<string, string> {
  const opts: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (PASSWORD_ARG.test(arg)) throw new CliError(EXIT.usage, NO_PASSWORD_ARGS);
    const m = /^--([a-z][a-z-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (!m)
      throw new CliError(
        EXIT.usage,
        `unexpected argument at position ${i + 1}; options look like --name value`,
      );
    const name = m[1]!;
    if (flags.includes(name) && m[2] === undefined) {
      opts[name] = 'true';
      continue;
    }
    if (!valued.includes(name)) throw new CliError(EXIT.usage, `unknown option --${name}`);
    const value = m[2] ?? args[++i];
    if (value === undefined || value.startsWith('--'))
      throw new CliError(EXIT.usage, `--${name} needs a value`);
    opts[name] = value;
  }
  return opts;
}

async function openDeps(env: NodeJS.ProcessEnv): Promise<Deps> {
  const config = loadConfig(env);
  // Logs go to stderr (warnings and up unless LOG_LEVEL says otherwise); stdout is for results.
  const logger = createLogger(env.LOG_LEVEL ?? 'warn', pino.destination({ fd: 2, sync: true }));
  // Loaded on demand: usage errors and help answer without loading the whole service.
  const { createDeps } = await import('../deps');
  const { migrate, pendingMigrations } = await import('../db/migrator');
  const deps = await createDeps(config, { logger });
  try {
    if ((await pendingMigrations(deps.db.sequelize)).length > 0) {
      if (!config.migrateOnStart) {
        throw new CliError(
          EXIT.failure,
          'migrations are pending and MIGRATE_ON_START=false: run `npm run migrate` first',
        );
      }
      await migrate({ sequelize: deps.db.sequelize, lockUrl: deps.migrationLockUrl, logger });
    }
  } catch (err) {
    await deps.close();
    throw err;
  }
  return deps;
}

async function withDeps<T>(io: CliIo, fn: (deps: Deps) => Promise<T>): Promise<T> {
  const deps = await openDeps(io.env);
  try {
    return await fn(deps);
  } finally {
    await deps.close();
  }
}

function fromEnv(io: CliIo, name: string): string | undefined {
  const v = io.env[name];
  return v === undefined || v === '' ? undefined : v;
}

async function newAccountPassword(io: CliIo): Promise<string> {
  const given = fromEnv(io, 'ADMIN_PASSWORD');
  if (given !== undefined) return given;
  if (!canPrompt()) {
    throw new CliError(
      EXIT.usage,
      'no password for the new account: set ADMIN_PASSWORD, or run the command in a terminal to be prompted',
    );
  }
  const first = await promptHidden('Password for the new administrator: ');
  const again = await promptHidden('Repeat the password: ');
  if (first !== again) throw new CliError(EXIT.dataError, 'the two passwords differ');
  return first;
}

async function createAdmin(args: string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, ['email']);
  if (opts.email === undefined)
    throw new CliError(EXIT.usage, 'create-admin needs --email <email>');
  const email = normaliseEmail(opts.email);
  // Fail before connecting anywhere.
  assertEmail(email, 'email');
  return withDeps(io, async (deps) => {
    let password: string | null = null;
    if (!(await deps.adminUsers.exists(email))) password = await newAccountPassword(io);
    else if (fromEnv(io, 'ADMIN_PASSWORD') !== undefined) {
      io.err('note: the account exists and keeps its password; ADMIN_PASSWORD was not used');
    }
    const { user, outcome } = await deps.adminUsers.createAdmin(email, password, CLI_ACTOR);
    const said = {
      created: `created administrator ${user.email} (${user.id})`,
      promoted: `${user.email} (${user.id}) is now an active administrator`,
      unchanged: `${user.email} (${user.id}) was already an active administrator; nothing changed`,
    };
    io.out(said[outcome]);
    return EXIT.ok;
  });
}

async function credential(
  io: CliIo,
  name: string,
  question: string,
  hidden: boolean,
): Promise<string> {
  const given = fromEnv(io, name);
  if (given !== undefined) return given.trim();
  if (!canPrompt())
    throw new CliError(EXIT.usage, `set ${name}, or run the command in a terminal to be prompted`);
  return (hidden ? await promptHidden(question) : await promptVisible(question)).trim();
}

async function discogsSetup(args: string[], io: CliIo): Promise<number> {
  parseOptions(args, []);
  const consumerKey = await credential(io, 'DISCOGS_CONSUMER_KEY', 'Discogs consumer key: ', false);
  const consumerSecret = await credential(
    io,
    'DISCOGS_CONSUMER_SECRET',
    'Discogs consumer secret: ',
    true,
  );
  return withDeps(io, async (deps) => {
    const status = await deps.discogsConfig.update({ consumerKey, consumerSecret }, CLI_ACTOR);
    io.out(
      `Discogs credentials saved (consumer key ${status.maskedKey}; the secret is stored encrypted)`,
    );
    return EXIT.ok;
  });
}

async function discogsShow(args: string[], io: CliIo): Promise<number> {
  const opts = parseOptions(args, [], ['json']);
  return withDeps(io, async (deps) => {
    const view = toDiscogsConfig(await deps.discogsConfig.status());
    if (opts.json) {
      io.out(JSON.stringify(view));
    } else {
      io.out(`configured:      ${view.configured ? 'yes' : 'no'}`);
      io.out(`consumer key:    ${view.consumer_key ?? '(not set)'}`);
      io.out(`consumer secret: ${view.consumer_secret_set ? 'set (never shown)' : '(not set)'}`);
      io.out(`updated at:      ${view.updated_at ?? '-'}`);
    }
    return EXIT.ok;
  });
}

async function reencryptSecrets(args: string[], io: CliIo): Promise<number> {
  parseOptions(args, []);
  return withDeps(io, async (deps) => {
    const { keyId, appConfig, oauthTokens, totpSecrets } =
      await deps.secretRotation.reencryptAll(CLI_ACTOR);
    const total = appConfig.reencrypted + oauthTokens.reencrypted + totpSecrets.reencrypted;
    io.out(`re-encrypted ${total} stored secret(s) under key id ${keyId}`);
    for (const [table, n] of [
      ['app_config', appConfig],
      ['oauth_tokens', oauthTokens],
      ['users (totp)', totpSecrets],
    ] as const) {
      io.out(`  ${table.padEnd(13)} ${n.reencrypted} re-encrypted, ${n.unchanged} already current`);
    }
    return EXIT.ok;
  });
}

const COMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  'create-admin': createAdmin,
  'discogs-setup': discogsSetup,
  'discogs-show': discogsShow,
  'reencrypt-secrets': reencryptSecrets,
};

function report(err: unknown, io: CliIo): number {
  if (err instanceof CliError) {
    io.err(`error: ${err.message}`);
    if (err.exitCode === EXIT.usage) io.err('run `npm run admin -- help` for usage');
    return err.exitCode;
  }
  if (err instanceof AppError && err.errors?.length) {
    for (const e of err.errors) io.err(`error: ${e.path.split('/').pop()} ${e.message}`);
    return EXIT.dataError;
  }
  if (err instanceof AppError) {
    io.err(`error: ${err.message}`);
    return err.status === 422 ? EXIT.dataError : EXIT.failure;
  }
  if (err instanceof PromptAborted) {
    io.err('aborted');
    return EXIT.failure;
  }
  if (err instanceof ConfigError) {
    io.err(err.message);
    return EXIT.failure;
  }
  io.err(`failed: ${(err as Error).message ?? String(err)}`);
  return EXIT.failure;
}

/** The admin command line; returns the exit code. */
export async function runAdminCli(argv: string[], io: CliIo): Promise<number> {
  try {
    const [command, ...args] = argv;
    if (command === undefined) {
      io.err(USAGE);
      return EXIT.usage;
    }
    if (['help', '--help', '-h'].includes(command)) {
      io.out(USAGE);
      return EXIT.ok;
    }
    if (PASSWORD_ARG.test(command)) throw new CliError(EXIT.usage, NO_PASSWORD_ARGS);
    const run = COMMANDS[command];
    if (!run) throw new CliError(EXIT.usage, `unknown command "${command.slice(0, 40)}"`);
    return await run(args, io);
  } catch (err) {
    return report(err, io);
  }
}
