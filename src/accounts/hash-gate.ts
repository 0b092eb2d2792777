import { ErrorCode, ServiceUnavailableError } from '../errors';

/**
 * Caps password hashes in flight. bcrypt runs on libuv's thread pool; without a cap a flood
 * of logins queues unboundedly and starves everything else. Beyond a short queue, callers get
 * 503 with Retry-After instead of piling up.
 */
export class HashGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly queueLimit: number,
  ) {}

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.queueLimit) {
        throw new ServiceUnavailableError(
          'The service is busy checking passwords; try again shortly.',
          ErrorCode.hashCapacityExceeded,
          1,
        );
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter; otherwise release it.
      if (next) next();
      else this.active--;
    }
  }
}
