import { ErrorCode, ServiceUnavailableError } from '../errors';

interface Waiter {
  start: () => void;
  refuse: (err: Error) => void;
}

function busy(): ServiceUnavailableError {
  return new ServiceUnavailableError(
    'The service is busy checking passwords; try again shortly.',
    ErrorCode.hashCapacityExceeded,
    1,
  );
}

/**
 * Caps password hashes in flight. bcrypt runs on a few threads (HashWorkers); without a cap a flood
 * of logins queues unboundedly and starves everything else. Beyond a short queue, callers get
 * 503 with Retry-After instead of piling up.
 *
 * The queue is shared fairly between clients (by address): free slots go to waiting clients in
 * turn, and when the queue is full a newcomer takes the place of the newest waiter of the
 * client holding the most places, as long as that client holds more than the newcomer would.
 * So one client flooding the gate cannot keep another client's single login out: at worst the
 * flooder gets the 503s.
 */
export class HashGate {
  private active = 0;
  private total = 0;
  /** Waiters per client, oldest first; a Map keeps clients in turn order. */
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(
    private readonly concurrency: number,
    private readonly queueLimit: number,
  ) {}

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.total;
  }

  async run<T>(fn: () => Promise<T>, client = ''): Promise<T> {
    if (this.active >= this.concurrency) {
      await this.enqueue(client);
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      this.releaseSlot();
    }
  }

  private enqueue(client: string): Promise<void> {
    const own = this.waiting.get(client)?.length ?? 0;
    if (this.total >= this.queueLimit) {
      const [greedy, queue] = this.longestQueue();
      // Strictly more than the newcomer would hold after joining, so two clients never keep
      // taking each other's place.
      if (!queue || queue.length <= own + 1) throw busy();
      // The newest waiter of the client holding the most places makes room.
      queue.pop()!.refuse(busy());
      this.total--;
      if (queue.length === 0) this.waiting.delete(greedy);
    }
    return new Promise<void>((start, refuse) => {
      const queue = this.waiting.get(client) ?? [];
      queue.push({ start, refuse });
      this.waiting.set(client, queue);
      this.total++;
    });
  }

  private longestQueue(): [string, Waiter[] | undefined] {
    let best: [string, Waiter[] | undefined] = ['', undefined];
    for (const [client, queue] of this.waiting) {
      if (!best[1] || queue.length > best[1].length) best = [client, queue];
    }
    return best;
  }

  /** Hands the slot to the first client in turn (which then goes to the back), or frees it. */
  private releaseSlot(): void {
    const first = this.waiting.entries().next();
    if (first.done) {
      this.active--;
      return;
    }
    const [client, queue] = first.value;
    const next = queue.shift()!;
    this.total--;
    this.waiting.delete(client);
    if (queue.length > 0) this.waiting.set(client, queue);
    next.start();
  }
}
