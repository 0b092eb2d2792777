import type { Logger } from 'pino';

/** One mail, ready to send. Bodies are built by templates.ts; nothing here tracks the reader. */
export interface OutgoingMail {
  kind: MailKind;
  /** For logs: mails are identified by account, never by their content or token. */
  userId: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

export type MailKind = 'password_reset' | 'email_verify';

export interface MailTransport {
  /** `smtp`: really sent; `log`: written to the log (development only). */
  readonly mode: 'smtp' | 'log';
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/** Over SMTP_URL (smtp:// with STARTTLS when offered, or smtps://), via nodemailer. */
export function smtpTransport(url: string, from: string): MailTransport {
  // Loaded only when SMTP is configured: nodemailer is a noticeable part of start-up, and a
  // service without SMTP_URL never needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodemailer = require('nodemailer') as typeof import('nodemailer');
  const transporter = nodemailer.createTransport({
    url,
    // A hung server must not hold a delivery (and the outbox behind it) forever.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    mode: 'smtp',
    async send(mail) {
      await transporter.sendMail({
        from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
      });
    },
    close() {
      transporter.close();
    },
  };
}

/**
 * A developer's convenience without SMTP_URL, never built in production: each mail is written
 * to the log in full (token included), so a local reset or verification can be finished.
 */
export function logTransport(logger: Logger, from: string): MailTransport {
  return {
    mode: 'log',
    async send(mail) {
      logger.info(
        {
          mail: {
            kind: mail.kind,
            from,
            to: mail.to,
            subject: mail.subject,
            text: mail.text,
          },
        },
        'mail written to the log instead of being sent (SMTP_URL is not set)',
      );
    },
    close() {},
  };
}
