/**
 * Errors on the page side, as RunnelError (the class apps test with
 * `instanceof` and `errorName`), with the class loaded when the first error
 * is built. NB: a static import of any @runnel/client entry would move the
 * client's modules into the page's first chunk: esbuild splits code by
 * module, and those entries are barrels that the lazily loaded hosts share.
 */
import type { ErrorName, RunnelError } from '@runnel/client';

/** An error as it crosses from a host to a tab (structured clone keeps no class): its name and message. */
export type RemoteError = { runnelError: { errorName: string; message: string } };

/** A RunnelError named `errorName` (an unknown name from another version of the host: UNKNOWN_SERVER_ERROR). */
export async function runnelError(errorName: string, message: string, cause?: unknown): Promise<RunnelError> {
  const { RunnelError: Class } = await import('@runnel/client/codec');
  return new Class(errorName as ErrorName, message, cause === undefined ? undefined : { cause });
}

/** Throws the error a host answered with. */
export async function fail(e: RemoteError['runnelError']): Promise<never> {
  throw await runnelError(e.errorName, e.message);
}
