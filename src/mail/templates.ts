import type { MailKind, OutgoingMail } from './mail-transport';

/**
 * Mail texts, plain and HTML. No images, no tracking pixels, no redirecting links: the only
 * link is the client's own page, with the token in the URL fragment (browsers never send the
 * fragment to a server, so it stays out of access logs and Referer headers). The token is also
 * on a line of its own, for clients without such a page.
 */

const escape = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

interface MailText {
  subject: string;
  intro: string;
  action: string;
  validity: string;
  ignore: string;
}

function compose(
  kind: MailKind,
  to: { userId: string; email: string },
  link: string,
  token: string,
  t: MailText,
): OutgoingMail {
  const text = [
    'Hello,',
    '',
    t.intro,
    '',
    `${t.action}:`,
    link,
    '',
    'Or paste this code where the page asks for it:',
    token,
    '',
    t.validity,
    t.ignore,
    '',
  ].join('\n');
  const html = `<!doctype html>
<html><body>
<p>Hello,</p>
<p>${escape(t.intro)}</p>
<p><a href="${escape(link)}">${escape(t.action)}</a></p>
<p>Or paste this code where the page asks for it:</p>
<p><code>${escape(token)}</code></p>
<p>${escape(t.validity)} ${escape(t.ignore)}</p>
</body></html>
`;
  return { kind, userId: to.userId, to: to.email, subject: t.subject, text, html };
}

export function passwordResetMail(
  to: { userId: string; email: string },
  publicBaseUrl: string,
  token: string,
  ttlMinutes: number,
): OutgoingMail {
  return compose(
    'password_reset',
    to,
    `${publicBaseUrl}/reset-password#token=${encodeURIComponent(token)}`,
    token,
    {
      subject: 'Reset your password',
      intro: `Someone, hopefully you, asked to reset the password of the account ${to.email}.`,
      action: 'Choose a new password',
      validity: `The code works once and expires in ${ttlMinutes} minutes.`,
      ignore: 'If you did not ask for this, ignore this mail: your password stays as it is.',
    },
  );
}

export function verificationMail(
  to: { userId: string; email: string },
  publicBaseUrl: string,
  token: string,
  ttlHours: number,
): OutgoingMail {
  return compose(
    'email_verify',
    to,
    `${publicBaseUrl}/verify-email#token=${encodeURIComponent(token)}`,
    token,
    {
      subject: 'Verify your email address',
      intro: `Please confirm that ${to.email} is your email address.`,
      action: 'Verify this address',
      validity: `The code works once and expires in ${ttlHours} hours.`,
      ignore: 'If you did not create an account, ignore this mail.',
    },
  );
}
