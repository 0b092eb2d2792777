import type { RequestHandler } from 'express';

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE';
const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Request-Id';
const EXPOSED_HEADERS = 'X-Request-Id, Retry-After, WWW-Authenticate';
/** Browsers cap this anyway (Chromium at 2 hours); 10 minutes keeps config changes quick to apply. */
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/** Origins compare as browsers send them: scheme://host[:port], lower-case, no trailing slash. */
function normaliseOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

/**
 * CORS for an explicit allow-list of origins. With an empty list no Access-Control-* header is
 * ever sent. Preflights from allowed origins are answered here, before the validator (which
 * would refuse OPTIONS with 405); anything else falls through untouched, so a disallowed
 * origin's preflight fails in the browser.
 */
export function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins.map(normaliseOrigin));
  return (req, res, next) => {
    if (allowed.size === 0) return next();
    // Caches must not hand one origin's answer to another.
    res.vary('Origin');
    const origin = req.headers.origin;
    if (!origin || !allowed.has(normaliseOrigin(origin))) return next();

    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    const preflight =
      req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!preflight) return next();

    res.vary('Access-Control-Request-Method');
    res.vary('Access-Control-Request-Headers');
    res.setHeader('Access-Control-Allow-Methods', ALLOWED_METHODS);
    res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
    res.setHeader('Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SECONDS);
    res.status(204).end();
  };
}
