import { Worker } from 'node:worker_threads';

/** The nice value hashing threads run at: below everything else of the process and the host. */
export const HASH_THREAD_NICE = 10;

/**
 * The worker's whole program. bcrypt's synchronous calls are safe here: each runs on its own
 * thread, never on the event loop, which only posts a message and awaits the answer.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const os = require('node:os');
const bcrypt = require(workerData.bcrypt);
try { os.setPriority(0, workerData.nice); } catch {}
parentPort.on('message', ({ id, op, password, arg }) => {
  try {
    const value = op === 'hash' ? bcrypt.hashSync(password, arg) : bcrypt.compareSync(password, arg);
    parentPort.postMessage({ id, value });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

interface Pending {
  resolve: (value: string | boolean) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Pending | undefined;
  id: number;
}

/**
 * Password hashing on threads of its own, at a lower OS priority than the event loop.
 *
 * Why not bcrypt's async calls on libuv's pool: those threads run at the event loop's priority,
 * so a login storm that keeps every core hashing makes the scheduler share each core between
 * bcrypt and the thread answering /health/live and /me, and those answers wait their turn
 * (p99 over 100 ms measured on 2 cores). Lowered to nice 10 (Linux priorities are per thread),
 * hashing still takes every idle cycle, so login throughput does not drop, but the event loop,
 * PostgreSQL and Redis run first whenever they have work.
 *
 * Each thread runs one hash at a time; HashGate in front keeps at most `size` in flight, so a
 * caller never waits here, only at the gate (where waiting is fair and bounded).
 */
export class HashWorkers {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly nice = HASH_THREAD_NICE,
  ) {}

  hash(password: string, cost: number): Promise<string> {
    return this.run('hash', password, cost) as Promise<string>;
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.run('compare', password, hash) as Promise<boolean>;
  }

  /** Ends every thread; a call in flight is refused. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private run(op: 'hash' | 'compare', password: string, arg: string | number) {
    if (this.closed) return Promise.reject(new Error('password hashing has shut down'));
    const slot = this.idleSlot();
    return new Promise<string | boolean>((resolve, reject) => {
      slot.busy = { resolve, reject };
      slot.id = this.nextId++;
      slot.worker.ref();
      slot.worker.postMessage({ id: slot.id, op, password, arg });
    });
  }

  /** Threads start on first use, up to `size`; more callers than that is the gate's bug. */
  private idleSlot(): Slot {
    const idle = this.slots.find((s) => !s.busy);
    if (idle) return idle;
    if (this.slots.length >= this.size) {
      throw new Error(`more than ${this.size} hashes in flight: the HashGate must come first`);
    }
    const slot = this.spawn();
    this.slots.push(slot);
    return slot;
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { bcrypt: require.resolve('bcrypt'), nice: this.nice },
      // bcrypt needs almost no JavaScript heap; keep each thread's isolate small.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
    });
    const slot: Slot = { worker, busy: undefined, id: -1 };
    // An idle thread never keeps the process alive; one with work in flight does.
    worker.unref();
    worker.on('message', (m: { id: number; value?: string | boolean; error?: string }) => {
      const pending = slot.busy;
      if (!pending || m.id !== slot.id) return;
      slot.busy = undefined;
      worker.unref();
      if (m.error !== undefined) pending.reject(new Error(m.error));
      else pending.resolve(m.value!);
    });
    // A thread that dies takes its call with it; the next call starts a fresh one.
    const fail = (err: Error) => {
      const at = this.slots.indexOf(slot);
      if (at !== -1) this.slots.splice(at, 1);
      slot.busy?.reject(err);
      slot.busy = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`hashing thread exited with code ${code}`)));
    return slot;
  }
}
