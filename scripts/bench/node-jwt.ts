import { createSecretKey } from 'node:crypto';
import http from 'node:http';
import jwt from 'jsonwebtoken';

/**
 * The bench's machine reference: bare node:http verifying the same HS256 token (KeyObject,
 * pinned algorithm, issuer and audience, as the service does) on every request. No
 * framework, no database: how fast this machine answers an authenticated request at all.
 */
const key = createSecretKey(Buffer.from(process.env.JWT_SECRET_KEY ?? '', 'utf8'));
const verifyOptions = {
  algorithms: ['HS256' as const],
  issuer: process.env.JWT_ISSUER ?? 'auth-service',
  audience: process.env.JWT_AUDIENCE ?? 'music-catalogue',
};
const BEARER = /^Bearer +(\S+)$/i;

http
  .createServer((req, res) => {
    if (req.url === '/ready') {
      res.writeHead(200).end();
      return;
    }
    const m = BEARER.exec(req.headers.authorization ?? '');
    try {
      if (!m) throw new Error('no bearer token');
      const claims = jwt.verify(m[1]!, key, verifyOptions) as { sub: string };
      const body = JSON.stringify({ id: claims.sub });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } catch {
      res.writeHead(401).end();
    }
  })
  .listen(Number(process.env.PORT ?? 0), '127.0.0.1');
