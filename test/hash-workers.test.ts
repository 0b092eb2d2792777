import fs from 'node:fs';
import bcrypt from 'bcrypt';
import { HASH_THREAD_NICE, HashWorkers } from '../src/accounts/hash-workers';

/** The nice value of one thread of this process, read from /proc (Linux). */
function niceOf(tid: string | number): number {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state; nice is field 19.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The nice value of every thread of this process. */
function threadNices(): number[] {
  return fs.readdirSync('/proc/self/task').map(niceOf);
}

/** How many threads of this process run at the hashing threads' priority. */
function lowered(): number {
  return threadNices().filter((n) => n === HASH_THREAD_NICE).length;
}

/** The event loop's thread: its id is the process id. */
function mainThreadNice(): number {
  return niceOf(process.pid);
}

describe('HashWorkers', () => {
  let pool: HashWorkers;
  afterEach(() => pool.close());

  test('when a password is hashed and compared, then bcrypt agrees with the result', async () => {
    pool = new HashWorkers(2);
    const hash = await pool.hash('correct horse', 4);
    expect(bcrypt.getRounds(hash)).toBe(4);
    expect(await bcrypt.compare('correct horse', hash)).toBe(true);
    expect(await pool.compare('correct horse', hash)).toBe(true);
    expect(await pool.compare('wrong horse', hash)).toBe(false);
  });

  test('when hashes run, then their threads have a lower priority than the event loop', async () => {
    pool = new HashWorkers(2);
    const mainNice = mainThreadNice();
    // Other pools of this test process (apps of earlier test files) may hold lowered threads too.
    const before = lowered();
    await Promise.all([pool.hash('a-password', 4), pool.hash('b-password', 4)]);
    expect(lowered() - before).toBe(2);
    // The event loop's own thread keeps its priority.
    expect(mainThreadNice()).toBe(mainNice);
    expect(mainNice).not.toBe(HASH_THREAD_NICE);
  });

  test('when more hashes than threads are asked for at once, then the caller is told it skipped the gate', async () => {
    pool = new HashWorkers(1);
    const first = pool.hash('a-password', 4);
    expect(() => pool.hash('b-password', 4)).toThrow(/HashGate must come first/);
    await first;
  });

  test('when the pool is closed, then a new call is refused and no thread is left', async () => {
    pool = new HashWorkers(1);
    const before = lowered();
    await pool.hash('a-password', 4);
    expect(lowered() - before).toBe(1);
    await pool.close();
    await expect(pool.hash('a-password', 4)).rejects.toThrow(/shut down/);
    expect(lowered()).toBe(before);
  });

  test('when bcrypt refuses its input, then the call fails and the thread serves the next one', async () => {
    pool = new HashWorkers(1);
    await expect(pool.compare('a-password', 'not a bcrypt hash')).resolves.toBe(false);
    await expect(pool.hash('a-password', 99)).rejects.toThrow();
    expect(await pool.compare('a-password', await pool.hash('a-password', 4))).toBe(true);
  });
});
