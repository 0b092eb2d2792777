import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics';
import type { MailKind, MailTransport, OutgoingMail } from './mail-transport';

export interface OutboxOptions {
  /** Attempts per mail, the first included. */
  attempts?: number;
  /** Wait before the second attempt; doubles each time. */
  retryBaseMs?: number;
}

/**
 * Work that produces a mail, or null when there is nothing to send (an unknown account, say).
 * It runs once, off the request path; only the delivery is retried.
 */
export type MailJob = () => Promise<OutgoingMail | null>;

/**
 * The in-process mail queue. Requests only enqueue; jobs run afterwards, one at a time, so a
 * slow or failing SMTP server never slows or fails a request. A failed delivery is retried
 * with exponential backoff and then given up, logged with the account id and never the mail
 * (it holds a token). Mails still queued when the process stops are lost: a user can ask again.
 */
export class MailOutbox {
  private readonly queue: { kind: MailKind; job: MailJob }[] = [];
  private running = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly attempts: number;
  private readonly retryBaseMs: number;
  /** Runs jobs outside whichever request enqueued them: they are not part of its work. */
  private readonly detached = AsyncLocalStorage.snapshot();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly transport: MailTransport | null,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    opts: OutboxOptions = {},
  ) {
    this.attempts = opts.attempts ?? 4;
    this.retryBaseMs = opts.retryBaseMs ?? 2_000;
  }

  /** False in production without SMTP_URL: nothing can be mailed. */
  get enabled(): boolean {
    return this.transport !== null;
  }

  /** Queues a job; a disabled outbox counts it as skipped and drops it. */
  enqueue(kind: MailKind, job: MailJob): void {
    if (!this.transport || this.closed) {
      this.metrics.mails.inc({ kind, outcome: 'skipped' });
      return;
    }
    this.queue.push({ kind, job });
    if (!this.running) {
      this.running = true;
      setImmediate(() => this.detached(() => void this.drain()));
    }
  }

  /** Resolves once every queued mail has been sent or given up. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking mail; waits up to timeoutMs for the queue to drain. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.idle(),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    for (const t of this.timers) clearTimeout(t);
    this.queue.length = 0;
    this.transport?.close();
  }

  private async drain(): Promise<void> {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      await this.run(next.kind, next.job);
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }

  private async run(kind: MailKind, job: MailJob): Promise<void> {
    let mail: OutgoingMail | null;
    try {
      mail = await job();
    } catch (err) {
      this.metrics.mails.inc({ kind, outcome: 'failed' });
      this.logger.warn({ kind, err: describe(err) }, 'could not prepare a mail; it is not sent');
      return;
    }
    if (!mail) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transport!.send(mail);
        this.metrics.mails.inc({ kind, outcome: 'sent' });
        return;
      } catch (err) {
        const last = attempt >= this.attempts || this.closed;
        this.metrics.mails.inc({ kind, outcome: last ? 'failed' : 'retried' });
        this.logger.warn(
          { kind, userId: mail.userId, attempt, err: describe(err) },
          last ? 'mail delivery failed; giving up' : 'mail delivery failed; will retry',
        );
        if (last) return;
        await this.sleep(this.retryBaseMs * 2 ** (attempt - 1));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }
}

/**
 * What a failed delivery logs: the error's kind and the SMTP status, not its message, which
 * may quote the server's answer about the message being sent.
 */
function describe(err: unknown): { name?: string; code?: string; responseCode?: number } {
  if (typeof err !== 'object' || err === null) return { name: typeof err };
  const e = err as { name?: string; code?: string; responseCode?: number };
  return { name: e.name, code: e.code, responseCode: e.responseCode };
}
