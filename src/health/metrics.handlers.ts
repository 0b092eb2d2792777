import type { HandlerMap } from '../http/contract';
import type { Metrics } from '../metrics';

/** The spec's media type for the Prometheus text format (prom-client adds the charset). */
const PROMETHEUS_TEXT = 'text/plain; version=0.0.4';

export function metricsHandlers(metrics: Metrics): Pick<HandlerMap, 'getMetrics'> {
  return {
    async getMetrics() {
      return { status: 200, body: await metrics.registry.metrics(), contentType: PROMETHEUS_TEXT };
    },
  };
}
