import type { Request, RequestHandler } from 'express';
import type { Metrics } from '../metrics';

/** Label for requests no operation matched (404s, 405s, scans): never the raw URL. */
export const UNMATCHED = 'unmatched';

interface OpenApiMatch {
  openapi?: { schema?: { operationId?: string } };
}

/**
 * The operationId when the validator matched one, else the template of a plain Express route;
 * both keep the label set bounded whatever clients send.
 */
function operationOf(req: Request): string {
  const operationId = (req as Request & OpenApiMatch).openapi?.schema?.operationId;
  if (operationId) return operationId;
  const routePath = (req.route as { path?: unknown } | undefined)?.path;
  return typeof routePath === 'string' ? routePath : UNMATCHED;
}

/** Times every request, including errors and aborted ones, into the request-duration histogram. */
export function requestMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpRequestDuration.startTimer();
    let recorded = false;
    // 'close' without a 'finish' first means the client went away before the response was sent.
    const record = (status: string) => {
      if (recorded) return;
      recorded = true;
      end({ method: req.method, operation: operationOf(req), status });
    };
    res.once('finish', () => record(String(res.statusCode)));
    res.once('close', () => record('aborted'));
    next();
  };
}
