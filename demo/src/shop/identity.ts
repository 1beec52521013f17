/**
 * Who is browsing: a userId kept in localStorage (stable across reloads and
 * tabs, so one user's events share a partition key and stay in order) and a
 * sessionId kept in sessionStorage (one per tab session).
 */
const USER_ID_KEY = 'runnel-demo:userId';
const SESSION_ID_KEY = 'runnel-demo:sessionId';

export interface Identity {
  userId: string;
  sessionId: string;
}

/** A random id; `crypto.randomUUID` needs a secure context, plain http on a LAN address is not one. */
function randomId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function stored(storage: Storage, key: string, prefix: string): string {
  const existing = storage.getItem(key);
  if (existing) return existing;
  const id = randomId(prefix);
  storage.setItem(key, id);
  return id;
}

export function loadIdentity(local: Storage = localStorage, session: Storage = sessionStorage): Identity {
  return { userId: stored(local, USER_ID_KEY, 'u'), sessionId: stored(session, SESSION_ID_KEY, 's') };
}
