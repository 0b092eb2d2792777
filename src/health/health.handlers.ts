import type { HandlerMap } from '../http/contract';
import type { HealthService } from './health.service';

export function healthHandlers(
  health: HealthService,
): Pick<HandlerMap, 'getHealth' | 'getLiveness' | 'getReadiness'> {
  return {
    async getHealth() {
      const checks = await health.dependencies();
      const healthy = checks.database === 'ok' && checks.redis !== 'down';
      const body = {
        status: healthy ? ('healthy' as const) : ('unhealthy' as const),
        service: 'auth' as const,
        timestamp: new Date().toISOString(),
        checks,
      };
      return healthy
        ? { status: 200, body }
        : { status: 503, body, headers: { 'Retry-After': '5' } };
    },
    async getLiveness() {
      return { status: 200, body: { status: 'ok' } };
    },
    async getReadiness() {
      const { ready, checks } = await health.readiness();
      return ready
        ? { status: 200, body: { status: 'ok', checks } }
        : { status: 503, body: { status: 'unavailable', checks }, headers: { 'Retry-After': '5' } };
    },
  };
}
