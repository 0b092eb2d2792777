import type { HandlerMap } from '../http/contract';
import type { HealthService } from './health.service';
import { toHealth, toProbeStatus } from './health.views';

export function healthHandlers(
  health: HealthService,
): Pick<HandlerMap, 'getHealth' | 'getLiveness' | 'getReadiness'> {
  return {
    async getHealth() {
      const checks = await health.dependencies();
      const healthy = checks.database === 'ok' && checks.redis !== 'down';
      const body = toHealth(healthy, checks);
      return healthy
        ? { status: 200, body }
        : { status: 503, body, headers: { 'Retry-After': '5' } };
    },
    async getLiveness() {
      return { status: 200, body: toProbeStatus(true) };
    },
    async getReadiness() {
      const { ready, checks } = await health.readiness();
      const body = toProbeStatus(ready, checks);
      return ready ? { status: 200, body } : { status: 503, body, headers: { 'Retry-After': '5' } };
    },
  };
}
