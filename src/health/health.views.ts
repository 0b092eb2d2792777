import type { Schemas } from '../http/contract';
import type { CheckState } from './health.service';

/** Service results -> response bodies of the health feature; shapes come from the spec. */

export function toHealth(
  healthy: boolean,
  checks: Record<string, CheckState>,
  now = new Date(),
): Schemas['Health'] {
  return {
    status: healthy ? 'healthy' : 'unhealthy',
    service: 'auth',
    timestamp: now.toISOString(),
    checks,
  };
}

export function toProbeStatus(
  ok: boolean,
  checks?: Record<string, CheckState>,
): Schemas['ProbeStatus'] {
  return checks
    ? { status: ok ? 'ok' : 'unavailable', checks }
    : { status: ok ? 'ok' : 'unavailable' };
}
