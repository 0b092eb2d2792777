import { afterAll, beforeAll, jest, test } from '@jest/globals';
import {
  describeScenario,
  expectHeldUp,
  runFaultScenario,
  startFaultyStack,
  type FaultyStack,
} from './support/fault-scenario';

/**
 * PostgreSQL behind a TCP proxy the test controls, under steady register/login/me load: the
 * service answers every request within 5 s (503 with Retry-After while the database is away),
 * readiness follows the database, and nothing acknowledged is lost.
 */
jest.setTimeout(90_000);

let stack: FaultyStack;
beforeAll(async () => {
  stack = await startFaultyStack();
});
afterAll(async () => {
  await stack.close();
});

test('when PostgreSQL refuses connections under load, then requests get 503 with Retry-After within 5 s, readiness follows, and every acknowledged registration logs in afterwards', async () => {
  const r = await runFaultScenario(stack, stack.pg, 'refuse');
  console.log(describeScenario('PostgreSQL refused', r));
  expectHeldUp(r);
  // Nothing works without the database: it fails closed.
  expect(r.duringFault.some((s) => s.status === 503)).toBe(true);
});

test('when PostgreSQL accepts connections but never answers under load, then requests get 503 within 5 s and the service recovers within 5 s of its return', async () => {
  const r = await runFaultScenario(stack, stack.pg, 'blackhole');
  console.log(describeScenario('PostgreSQL black-holed', r));
  expectHeldUp(r);
  // Nothing works without the database: it fails closed.
  expect(r.duringFault.some((s) => s.status === 503)).toBe(true);
});
