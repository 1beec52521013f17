/**
 * How the HTTP API reports failures: always `{ "error": { "code", "message" } }`
 * with the status of the code's row in the shared ErrorTable
 * (client-sdk/src/codec/errors.ts). Expected failures are RunnelErrors;
 * anything else is a bug, logged, and answered as UNKNOWN_SERVER_ERROR
 * without leaking its message.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { ErrorTable, RunnelError, type ErrorName } from '@runnel/client/codec';

export function errorResponse(name: ErrorName, message?: string, status?: number): Response {
  const body = new RunnelError(name, message).toJSON();
  return Response.json(body, { status: status ?? ErrorTable[name].status });
}

/** zod issues as one line: `records.0.partition: Too small: expected number to be >=0`. */
export function describeZodError(error: ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** Hono `onError`: maps thrown errors to the JSON error body. */
export function handleError(error: unknown, c: Context, log: (error: unknown) => void): Response {
  if (error instanceof RunnelError) {
    const retryAfterMs = Number(error.details?.retryAfterMs ?? 0);
    // A throttled client is told when to come back (RFC 9110 Retry-After, whole seconds; retryAfterMs in the body is exact).
    if (retryAfterMs > 0) c.header('retry-after', String(Math.ceil(retryAfterMs / 1000)));
    return c.json(error.toJSON(), ErrorTable[error.errorName].status as ContentfulStatusCode);
  }
  if (error instanceof HTTPException) {
    // Hono's own validators (malformed JSON body, wrong content type).
    return errorResponse('INVALID_REQUEST', error.message || 'malformed request', error.status >= 400 && error.status < 500 ? error.status : 400);
  }
  log(error);
  return errorResponse('UNKNOWN_SERVER_ERROR');
}
