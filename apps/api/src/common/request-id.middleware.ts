/**
 * Every response carries `x-request-id`: the client's own when it sent a safe one, otherwise the request's id,
 * a new UUID that also names its job and its events (a client's id may repeat; a job id may not).
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const SAFE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function requestId(req: Request, res: Response, next: NextFunction): void {
  const id = randomUUID();
  (req as Request & { requestId?: string }).requestId = id;
  const given = req.header('x-request-id');
  res.setHeader('x-request-id', given && SAFE_ID.test(given) ? given : id);
  next();
}
