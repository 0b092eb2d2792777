import express from 'express';

/**
 * The bench's framework reference: a minimal Express 5 app in its own process whose one
 * route answers {"hello":"world"}. `/api/v1/auth/me` is measured against it under the same
 * load, so the ratio says what the service adds on top of the framework.
 */
const app = express();
app.get('/', (_req, res) => {
  res.json({ hello: 'world' });
});
app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
