import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { Logger } from 'pino';

/** Channel the triggers of migration 20261201002000 notify on; the payload is a user id. */
export const USER_STATE_CHANNEL = 'auth_user_state';
/** Payload of the TRUNCATE triggers: every user's state may have changed. */
export const ALL_USERS = '*';
const PROBE_PREFIX = 'probe:';

export interface UserStateListenerOptions {
  url: string;
  logger: Logger;
  /** How often the listener proves that notifications reach it. */
  heartbeatMs?: number;
  /** How old the last proof may be for the listener to count as healthy. */
  trustMs?: number;
  /** Pause before reconnecting after the connection dropped. */
  reconnectMs?: number;
  /** Sends a NOTIFY the way writers do (through the application's pool). */
  notify(payload: string): Promise<void>;
}

export interface UserStateEvents {
  /** A user's state changed (or ALL_USERS). */
  changed(userId: string): void;
  /** Notifications may have been missed: forget everything. */
  lost(): void;
}

/**
 * Keeps one connection LISTENing to user-state changes and tells whether it can be trusted.
 *
 * Trust is earned, not assumed. Every `heartbeatMs` a NOTIFY carrying its send time goes out
 * through the application's own pool. PostgreSQL delivers notifications in commit order, so
 * when the probe sent at T comes back, every change committed before T has been delivered too.
 * `healthy` holds while that T is less than `trustMs` (1 s) old: a cached answer can then miss
 * only changes younger than a second. A connection that dropped, hangs, or sits behind a pooler
 * that cannot LISTEN (PgBouncer in transaction mode) stops being trusted within that second, and
 * callers read the database instead.
 */
export class UserStateListener {
  private client: Client | null = null;
  /** Send time of the newest probe that came back. */
  private provenAt = 0;
  private closed = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnect: NodeJS.Timeout | undefined;
  private readonly probe = PROBE_PREFIX + randomUUID();
  private readonly heartbeatMs: number;
  private readonly trustMs: number;
  /** Probes a sync() waits for, by payload. */
  private readonly waiters = new Map<string, () => void>();
  private syncs = 0;

  private events: UserStateEvents = { changed: () => undefined, lost: () => undefined };

  constructor(private readonly opts: UserStateListenerOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 200;
    this.trustMs = opts.trustMs ?? 1_000;
  }

  /** True while every change committed more than `trustMs` ago is known to have reached us. */
  get healthy(): boolean {
    return this.client !== null && Date.now() - this.provenAt < this.trustMs;
  }

  private sendProbe(): void {
    this.opts.notify(`${this.probe}:${Date.now()}`).catch(() => undefined);
  }

  /** Opens the listening connection (reconnecting whenever it drops) and reports to `events`. */
  start(events: UserStateEvents): void {
    this.events = events;
    void this.connect();
    this.heartbeat = setInterval(() => {
      if (this.client) this.sendProbe();
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new Client({
      connectionString: this.opts.url,
      application_name: 'auth-service-listener',
      keepAlive: true,
    });
    const drop = (why: string) => {
      if (this.client !== client) return;
      this.client = null;
      this.provenAt = 0;
      this.events.lost();
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (this.closed) return;
      this.opts.logger.warn(
        { reason: why },
        'user-state listener lost: authenticating from the database until it is back',
      );
      this.scheduleReconnect();
    };
    client.on('error', (err) => drop(err.message));
    client.on('end', () => drop('connection ended'));
    client.on('notification', (msg) => {
      if (msg.channel !== USER_STATE_CHANNEL || !msg.payload) return;
      if (msg.payload.startsWith(this.probe + ':')) {
        const sentAt = Number(msg.payload.slice(this.probe.length + 1).split(':')[0]);
        if (this.client === client && sentAt > this.provenAt) this.provenAt = sentAt;
        this.waiters.get(msg.payload)?.();
      } else if (!msg.payload.startsWith(PROBE_PREFIX)) this.events.changed(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${USER_STATE_CHANNEL}`);
    } catch (err) {
      client.end().catch(() => undefined);
      this.opts.logger.warn(
        { err: { message: (err as Error).message } },
        'user-state listener could not connect; retrying',
      );
      this.scheduleReconnect();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    // Changes made before LISTEN took effect were never notified to us.
    this.events.lost();
    this.provenAt = 0;
    this.client = client;
    this.sendProbe();
  }

  /**
   * Resolves once every change committed before the call has reached this process's cache: a
   * probe sent now comes back after them (commit order). A request that changed user state
   * awaits this before answering, so its own replica can never answer the next request from a
   * stale entry. Without a trusted connection there is nothing cached to wait for; a probe
   * that does not come back within `trustMs` empties the cache instead.
   */
  async sync(): Promise<void> {
    if (!this.client) return;
    const payload = `${this.probe}:${Date.now()}:${this.syncs++}`;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve) => {
        this.waiters.set(payload, resolve);
        timer = setTimeout(() => {
          this.events.lost();
          resolve();
        }, this.trustMs);
        this.opts.notify(payload).catch(() => undefined);
      });
    } finally {
      clearTimeout(timer);
      this.waiters.delete(payload);
    }
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnect);
    this.reconnect = setTimeout(() => void this.connect(), this.opts.reconnectMs ?? 500);
    this.reconnect.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnect);
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }
}
