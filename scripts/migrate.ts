import 'dotenv/config';
import { loadConfig } from '../src/config';
import { migrate } from '../src/db/migrator';
import { createDeps } from '../src/deps';

/** `npm run migrate` (up), `npm run migrate -- down [steps]` (0 = all). */
async function main(): Promise<void> {
  const [direction = 'up', stepsArg] = process.argv.slice(2);
  if (direction !== 'up' && direction !== 'down') {
    console.error('usage: npm run migrate -- [up | down [steps]]');
    process.exit(64);
  }
  const steps = stepsArg === undefined ? 1 : Number(stepsArg);
  if (!Number.isInteger(steps) || steps < 0) {
    console.error('steps must be a non-negative integer (0 = all)');
    process.exit(64);
  }
  const deps = await createDeps(loadConfig({ ...process.env, MIGRATE_ON_START: 'false' }));
  try {
    const done = await migrate({
      sequelize: deps.db.sequelize,
      lockUrl: deps.migrationLockUrl,
      logger: deps.logger,
      direction,
      steps,
    });
    console.log(done.length ? `${direction}: ${done.join(', ')}` : 'nothing to do');
  } finally {
    await deps.close();
  }
}

main().catch((err: Error) => {
  console.error(`migrate failed: ${err.message}`);
  process.exit(1);
});
