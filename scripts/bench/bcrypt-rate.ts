import bcrypt from 'bcrypt';

/**
 * The bench's hashing reference, in a process of its own with the environment (and so the
 * libuv thread pool, UV_THREADPOOL_SIZE) the service gets: raw bcrypt.compare or
 * bcrypt.hash calls per second, `concurrency` in flight at all times for `seconds`.
 * Prints one JSON line: {"op", "cost", "concurrency", "perSecond"}.
 */
async function main(): Promise<void> {
  const [op = 'compare', cost = '10', concurrency = '4', seconds = '10'] = process.argv.slice(2);
  const rounds = Number(cost);
  const password = 'bench-password-1';
  const hash = await bcrypt.hash(password, rounds);
  const once = (): Promise<unknown> =>
    op === 'hash' ? bcrypt.hash(password, rounds) : bcrypt.compare(password, hash);
  // Warm-up: one round per slot.
  await Promise.all(Array.from({ length: Number(concurrency) }, () => once()));
  const start = performance.now();
  const end = start + Number(seconds) * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < end) {
      await once();
      done++;
    }
  };
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  const elapsed = (performance.now() - start) / 1000;
  process.stdout.write(
    JSON.stringify({
      op,
      cost: rounds,
      concurrency: Number(concurrency),
      perSecond: done / elapsed,
    }) + '\n',
  );
}

void main();
