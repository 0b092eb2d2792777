import { EventEmitter } from 'node:events';
import { afterAll, beforeAll } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

/**
 * A real SMTP server inside the test process (smtp-server), parsing what it receives with
 * mailparser. `refuse(n)` makes the next n deliveries fail with a temporary error (451).
 */
export class TestSmtpServer {
  readonly mails: ReceivedMail[] = [];
  private readonly events = new EventEmitter();
  private refusals = 0;
  private server!: SMTPServer;
  port = 0;

  /** With `credentials`, the server demands AUTH with exactly them (over plain SMTP, tests only). */
  static async start(
    credentials?: { user: string; pass: string },
    s = new TestSmtpServer(),
  ): Promise<TestSmtpServer> {
    s.server = new SMTPServer({
      authOptional: !credentials,
      allowInsecureAuth: true,
      onAuth: (auth, _session, callback) => {
        if (
          credentials &&
          auth.username === credentials.user &&
          auth.password === credentials.pass
        ) {
          callback(null, { user: auth.username });
        } else {
          callback(new Error('Invalid username or password'));
        }
      },
      // Plain SMTP on localhost: no certificate to trust in tests.
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, _session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (s.refusals > 0) {
            s.refusals--;
            const err = Object.assign(new Error('Try again later'), { responseCode: 451 });
            callback(err);
            s.events.emit('refused');
            return;
          }
          void simpleParser(Buffer.concat(chunks)).then((parsed) => {
            const mail: ReceivedMail = {
              from: parsed.from?.text ?? '',
              to: Array.isArray(parsed.to)
                ? parsed.to.map((a) => a.text).join(', ')
                : (parsed.to?.text ?? ''),
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : '',
            };
            s.mails.push(mail);
            callback();
            s.events.emit('mail', mail);
          }, callback);
        });
      },
    });
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  refuse(n: number): void {
    this.refusals = n;
  }

  /** The first mail (received already or later) that matches, within a bounded wait. */
  waitFor(match: (m: ReceivedMail) => boolean, timeoutMs = 10_000): Promise<ReceivedMail> {
    const found = this.mails.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onMail = (m: ReceivedMail) => {
        if (!match(m)) return;
        clearTimeout(timer);
        this.events.off('mail', onMail);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.events.off('mail', onMail);
        reject(new Error(`no matching mail within ${timeoutMs} ms`));
      }, timeoutMs);
      this.events.on('mail', onMail);
    });
  }

  /** Mails to this address so far. */
  to(address: string): ReceivedMail[] {
    return this.mails.filter((m) => m.to.toLowerCase() === address.toLowerCase());
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The token a mail carries on a line of its own (the line after the "paste this code" one). */
export function tokenIn(mail: ReceivedMail): string {
  const lines = mail.text.split(/\r?\n/);
  const at = lines.findIndex((l) => l.startsWith('Or paste this code'));
  const token = lines[at + 1]?.trim();
  if (at < 0 || !token) throw new Error(`no token in mail: ${mail.subject}`);
  return token;
}

/**
 * An SMTP server for a test file (or a `describe`): started in `beforeAll`, closed in
 * `afterAll`. Declare it before `useTestApp(() => ({ SMTP_URL: smtp.url }))`.
 */
export function useSmtpServer(credentials?: { user: string; pass: string }): TestSmtpServer {
  const holder = new TestSmtpServer();
  beforeAll(async () => {
    await TestSmtpServer.start(credentials, holder);
  });
  afterAll(async () => {
    if (holder.port) await holder.close();
  });
  return holder;
}
