import { afterAll, beforeAll, jest, test } from '@jest/globals';
import {
  describeScenario,
  expectHeldUp,
  runFaultScenario,
  startFaultyStack,
  type FaultyStack,
} from './support/fault-scenario';

/**
 * Redis behind a TCP proxy the test controls, under steady register/login/me load: the
 * service answers every request within 5 s (503 with Retry-After, or a documented fallback),
 * readiness follows Redis, and nothing acknowledged is lost.
 */
jest.setTimeout(90_000);

let stack: FaultyStack;
beforeAll(async () => {
  stack = await startFaultyStack();
});
afterAll(async () => {
  await stack.close();
});

test('when Redis refuses connections under load, then every request answers within 5 s (503 with Retry-After or a fallback), readiness follows, and every acknowledged registration logs in afterwards', async () => {
  const r = await runFaultScenario(stack, stack.redis, 'refuse');
  console.log(describeScenario('Redis refused', r));
  expectHeldUp(r);
  // Redis only speeds things up: sessions are checked in PostgreSQL, rate limits fall back.
  expect(r.duringFault.filter((s) => s.status >= 300)).toEqual([]);
});

test('when Redis accepts connections but never answers under load, then every request answers within 5 s and the service recovers within 5 s of its return', async () => {
  const r = await runFaultScenario(stack, stack.redis, 'blackhole');
  console.log(describeScenario('Redis black-holed', r));
  expectHeldUp(r);
  // Redis only speeds things up: sessions are checked in PostgreSQL, rate limits fall back.
  expect(r.duringFault.filter((s) => s.status >= 300)).toEqual([]);
});
