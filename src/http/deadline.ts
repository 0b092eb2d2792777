import type { RequestHandler, Response } from 'express';
import { ServiceUnavailableError } from '../errors';
import { sendProblem } from './problem';

/**
 * The answer deadline of every request: whatever a dependency does, the client hears back
 * within REQUEST_DEADLINE_MS. Each dependency call has its own, shorter deadline (see
 * src/db/database.ts and the Redis client options), so a request that meets one dead
 * dependency fails there first with the precise reason; this is the backstop for a request
 * that chains several slow steps. The handler keeps running after the deadline (its writes are
 * in transactions of their own, so a 503 here means "outcome unknown, try again", as any
 * 503 does); its late reply is dropped, see `deadlinePassed`.
 */
export const REQUEST_DEADLINE_MS = 4_000;

const PASSED = Symbol('deadlinePassed');

/** True once the deadline answered for this response; later replies and errors are dropped. */
export function deadlinePassed(res: Response): boolean {
  return (res as Response & { [PASSED]?: boolean })[PASSED] === true;
}

export function requestDeadline(ms = REQUEST_DEADLINE_MS): RequestHandler {
  return (req, res, next) => {
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      (res as Response & { [PASSED]?: boolean })[PASSED] = true;
      req.log?.warn({ deadlineMs: ms }, 'request deadline passed: answered 503');
      // The connection may still be receiving a body or carrying a late reply: close it.
      res.setHeader('Connection', 'close');
      sendProblem(
        res,
        new ServiceUnavailableError('The service did not answer in time; try again shortly.'),
        req.id as string,
      );
    }, ms);
    const clear = () => clearTimeout(timer);
    res.once('finish', clear);
    res.once('close', clear);
    next();
  };
}
