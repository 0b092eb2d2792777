import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { Config } from '../config';
import { TooManyRequestsError } from '../errors';
import type { Metrics } from '../metrics';

export type LimiterName =
  'login' | 'login_ip' | 'register' | 'reset_ip' | 'reset_email' | 'verify_resend';

export interface RateLimitsOptions {
  config: Readonly<Config>;
  /** Shared counters across replicas; null keeps them in process. */
  redis: Redis | null;
  redisKeyPrefix: string;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Brute-force and abuse limits. With Redis every replica shares the counters; when Redis does
 * not answer, an in-process limiter with the same budget takes over instead of failing the
 * request (so an outage degrades to per-replica limits, never to no limits or to 500s).
 */
export class RateLimits {
  private readonly limiters: Record<LimiterName, RateLimiterAbstract> | null;

  constructor(private readonly opts: RateLimitsOptions) {
    const { rateLimit } = opts.config;
    this.limiters = rateLimit.enabled
      ? {
          login: this.limiter('login', rateLimit.loginPerMinute, 60),
          login_ip: this.limiter('login_ip', rateLimit.loginIpPerMinute, 60),
          register: this.limiter('register', rateLimit.registerPerHour, 60 * 60),
          reset_ip: this.limiter('reset_ip', rateLimit.resetPerHour, 60 * 60),
          reset_email: this.limiter('reset_email', rateLimit.resetPerHour, 60 * 60),
          verify_resend: this.limiter('verify_resend', rateLimit.resetPerHour, 60 * 60),
        }
      : null;
  }

  /**
   * Reserves one failed-login slot for this client (across all emails) and one for this client
   * and email, before the password is checked, so concurrent guesses cannot overshoot either
   * budget and a client spraying fresh emails is stopped before it costs any hashing;
   * `loginSucceeded` gives them back. Used for every check of an account password (login,
   * password change).
   */
  async beginLogin(ip: string, email: string): Promise<void> {
    const key = loginKey(ip, email);
    // Both at once, so that a Redis that stops answering costs one command deadline, not two.
    const [byIp, byEmail] = await Promise.allSettled([
      this.consume('login_ip', ip),
      this.consume('login', key),
    ]);
    if (byIp.status === 'fulfilled' && byEmail.status === 'fulfilled') return;
    // Refused by one budget: the other gets its slot back.
    if (byIp.status === 'fulfilled') await this.refund('login_ip', ip);
    if (byEmail.status === 'fulfilled') await this.refund('login', key);
    throw byIp.status === 'rejected' ? byIp.reason : (byEmail as PromiseRejectedResult).reason;
  }

  /** Gives back the slots of an attempt whose password was never judged (503 and the like). */
  async cancelLogin(ip: string, email: string): Promise<void> {
    await Promise.all([this.refund('login', loginKey(ip, email)), this.refund('login_ip', ip)]);
  }

  /**
   * A correct password clears the client's failures for that email and gives back its slot in
   * the client's budget: only failures count there.
   */
  async loginSucceeded(ip: string, email: string): Promise<void> {
    if (!this.limiters) return;
    const limiter = this.limiters.login;
    await Promise.all([
      limiter.delete(loginKey(ip, email)).catch((err: unknown) => {
        this.opts.logger.warn({ err: describe(err) }, 'could not reset a login rate-limit counter');
      }),
      this.refund('login_ip', ip),
    ]);
  }

  private async refund(name: LimiterName, key: string): Promise<void> {
    if (!this.limiters) return;
    try {
      await this.limiters[name].reward(key);
    } catch (err) {
      this.opts.logger.warn(
        { err: describe(err), limiter: name },
        'could not refund a rate-limit slot',
      );
    }
  }

  /** Counts one registration attempt from this client. */
  async registration(ip: string): Promise<void> {
    await this.consume('register', ip);
  }

  /**
   * Counts one password-reset request from this client and for this email. Both are counted
   * whatever the email, so the limit behaves the same for accounts that do not exist.
   */
  async passwordReset(ip: string, email: string): Promise<void> {
    await this.consume('reset_ip', ip);
    await this.consume('reset_email', emailKey(email));
  }

  /** Counts one verification-mail resend for this account. */
  async verificationResend(userId: string): Promise<void> {
    await this.consume('verify_resend', userId);
  }

  private async consume(name: LimiterName, key: string): Promise<void> {
    if (!this.limiters) return;
    try {
      await this.limiters[name].consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        this.opts.metrics.rateLimitRejections.inc({ limiter: name });
        throw new TooManyRequestsError(err.msBeforeNext / 1000);
      }
      // Both the store and the insurance limiter failed: let the request through rather
      // than lock everyone out over a counter.
      this.opts.logger.warn({ err: describe(err), limiter: name }, 'rate limiter unavailable');
    }
  }

  private limiter(name: LimiterName, points: number, duration: number): RateLimiterAbstract {
    const insuranceLimiter = new RateLimiterMemory({ points, duration });
    if (!this.opts.redis) return insuranceLimiter;
    return new RateLimiterRedis({
      storeClient: this.opts.redis,
      keyPrefix: `${this.opts.redisKeyPrefix}rl:${name}`,
      points,
      duration,
      insuranceLimiter,
    });
  }
}

/** Emails are hashed so the counter keys hold no personal data. */
function loginKey(ip: string, email: string): string {
  return `${ip}|${emailKey(email)}`;
}

function emailKey(email: string): string {
  return createHash('sha256').update(email.trim().toLowerCase()).digest('base64url');
}

function describe(err: unknown): { name?: string; message?: string } {
  return err instanceof Error ? { name: err.name, message: err.message } : { message: String(err) };
}
