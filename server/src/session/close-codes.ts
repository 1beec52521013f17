/**
 * WebSocket close codes (RFC 6455 §7.4) used by the broker. Application
 * codes live in 4000–4999: Kafka-numbered errors map to 4000 + code
 * (UNSUPPORTED_VERSION 35 → 4035), Runnel's own 1000+ codes to 4900 +
 * (code − 1000) (INVALID_FRAME → 4900, LIMIT_EXCEEDED → 4901,
 * SLOW_CONSUMER → 4902). The close reason is the error name.
 * Documented in docs/protocol.md ("Session behaviour").
 */
import { ErrorTable, type ErrorName } from '@runnel/client/codec';

export const GOING_AWAY = 1001;

export function closeCodeFor(name: ErrorName): number {
  const code = ErrorTable[name].code;
  if (code >= 1000) return 4900 + (code - 1000);
  return code >= 0 ? 4000 + code : 4999;
}
