/**
 * Issue 11, "Must show" 1: the authorization matrix, over real sockets and
 * real HTTP against a real broker process started with `--auth-public-key`
 * (RS256 issuer) AND `--auth-secret` (HS256), so that an HS256 token signed
 * with the RSA public key's PEM meets an HMAC key and must still fail.
 *
 * Rows: every WebSocket frame a client sends, every HTTP route. Columns:
 *
 *   none          no token at all
 *   expired       a genuine token whose exp passed 10 min ago (beyond the 30 s tolerance)
 *   otherGrants   a genuine, unexpired token whose grants name other topics and groups only
 *   forged        a genuine token's payload swapped for an admin one, original signature kept
 *   algNone       an unsecured JWT (alg: none) claiming admin
 *   hsRsaPub      HS256 signed with the issuer's RSA public key PEM as the secret (alg confusion)
 *   valid         a genuine token with exactly the grant the operation needs
 *
 * Cells: `auth` = authentication refused (WebSocket: the hello is refused
 * with SASL_AUTHENTICATION_FAILED and the socket closed with its close code
 * 4058, the frame sent right behind the hello is never served; HTTP: 401
 * SASL_AUTHENTICATION_FAILED); TOPIC / GROUP / CLUSTER = that
 * *_AUTHORIZATION_FAILED, answered on the request itself (WebSocket: the
 * answer frame's errorCode, or an error frame with the request's id; HTTP
 * 403); `ok` = served; `filtered` = served without the names it may not
 * see; `ignored` = no answer and no effect (credit/unsubscribe of a
 * partition the connection has no subscription to).
 *
 * For every cell: whatever the request could change is unchanged unless it
 * was `ok`; each refusal writes exactly one audit line (broker stderr) with
 * the right event, code and failure, and no log line ever holds a token;
 * `runnel_auth_failures_total` counts exactly the refusals seen, by reason.
 * Then: a token whose exp passes while its socket is open is closed
 * TOKEN_EXPIRED (4909) within about the sweep interval.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorTable, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, errorNameOf, type BrokerFrame, type ClientFrame, type ErrorName } from '@runnel/client/codec';
import { TestClient, makeBatch } from '../broker/harness.ts';
import type { RunnelClaimInput } from '../../server/src/auth/claims.ts';
import { closeCodeFor } from '../../server/src/session/close-codes.ts';
import { SecureBroker } from './secure-broker.ts';
import { FAILURE_OF, TestIssuer, TOKEN_KINDS, nowSec, type TokenKind } from './tokens.ts';

const TOPIC = 'sec.orders';
const GROUP = 'sec-group';
const MEMBERS_GROUP = 'sec-members';
const CLIENT: RunnelClaimInput = { publish: ['sec.*'], subscribe: ['sec.*'], group: ['sec-*'] };
const ADMIN: RunnelClaimInput = { admin: true };
const SASL_CLOSE = closeCodeFor('SASL_AUTHENTICATION_FAILED');
const EXPIRED_CLOSE = closeCodeFor('TOKEN_EXPIRED');

type Cell = 'auth' | 'TOPIC' | 'GROUP' | 'CLUSTER' | 'ok' | 'filtered' | 'ignored';
const REFUSAL: Record<'TOPIC' | 'GROUP' | 'CLUSTER', ErrorName> = {
  TOPIC: 'TOPIC_AUTHORIZATION_FAILED', GROUP: 'GROUP_AUTHORIZATION_FAILED', CLUSTER: 'CLUSTER_AUTHORIZATION_FAILED',
};

type WsOp = 'metadataRequest' | 'initProducer' | 'produce' | 'subscribe' | 'credit' | 'unsubscribe' | 'offsetCommit' | 'offsetFetch' | 'groupJoin' | 'groupHeartbeat' | 'groupLeave';

// NB: initProducer × otherGrants is `ok` by design: a producer id needs a publish grant on any topic (KIP-679);
// the grant-edge table below shows CLUSTER_AUTHORIZATION_FAILED for a token without one.
/* eslint-disable no-multi-spaces */
//                                          none    expired  otherGrants  forged  algNone  hsRsaPub  valid
const WS_MATRIX: Record<WsOp, Cell[]> = {
  metadataRequest: /* topic T      */     ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  initProducer:    /* cluster      */     ['auth', 'auth',   'ok',        'auth', 'auth',  'auth',   'ok'],
  produce:         /* T/0          */     ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  subscribe:       /* T/0          */     ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  credit:          /* T/0          */     ['auth', 'auth',   'ignored',   'auth', 'auth',  'auth',   'ok'],
  unsubscribe:     /* T/0          */     ['auth', 'auth',   'ignored',   'auth', 'auth',  'auth',   'ok'],
  offsetCommit:    /* G, T/0       */     ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
  offsetFetch:     /* G, [T]       */     ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
  groupJoin:       /* M, [T]       */     ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
  groupHeartbeat:  /* M            */     ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
  groupLeave:      /* M            */     ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
};

//                                                       none    expired  otherGrants  forged  algNone  hsRsaPub  valid
const HTTP_MATRIX: Record<string, Cell[]> = {
  'POST /v1/topics':                                    ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],   // valid = admin
  'GET /v1/topics':                                     ['auth', 'auth',   'filtered',  'auth', 'auth',  'auth',   'ok'],
  'GET /v1/topics/T':                                   ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'GET /v1/topics/T (runnel_token cookie)':             ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'DELETE /v1/topics/T':                                ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],   // valid = admin
  'POST /v1/topics/T/records (JSON)':                   ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'POST /v1/topics/T/records (NDJSON)':                 ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'POST /v1/topics/T/records (beacon, access_token)':   ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'POST /v1/topics/T/records?partition=0 (binary)':     ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'GET /v1/topics/T/partitions/0/records':              ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'GET /v1/topics/T/partitions/0/records (long poll)':  ['auth', 'auth',   'TOPIC',     'auth', 'auth',  'auth',   'ok'],
  'GET /v1/topics/T/partitions/0/stream (SSE, access_token)': ['auth', 'auth', 'TOPIC',   'auth', 'auth',  'auth',   'ok'],
  'GET /v1/groups':                                     ['auth', 'auth',   'filtered',  'auth', 'auth',  'auth',   'ok'],
  'GET /v1/groups/G':                                   ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
  'GET /v1/groups/G/offsets':                           ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
  'POST /v1/groups/G/offsets':                          ['auth', 'auth',   'GROUP',     'auth', 'auth',  'auth',   'ok'],
  'GET /metrics':                                       ['auth', 'auth',   'CLUSTER',   'auth', 'auth',  'auth',   'ok'],   // valid = admin
};
/* eslint-enable no-multi-spaces */

/**
 * Cells that fail today because of the request layer / session / HTTP code (not the auth modules):
 * kept as `todo` tests so they run and show, and turn into failures to fix once someone removes them.
 */
const TODO: Record<string, string> = {};

let broker: SecureBroker;
const issuer = new TestIssuer();
let adminToken: string;
/** Refusals the tests observed, by metric reason; audit lines and the metric must match them. */
const refusals = { authentication: 0, expired: 0, authorization: 0 };
const refusalTimes: number[] = [];

before(async () => {
  broker = await SecureBroker.start(issuer.brokerArgs());
  adminToken = await issuer.rs256('matrix-admin', ADMIN);
  await http('POST', '/v1/topics', { token: adminToken, json: { name: TOPIC, partitions: 1, replicationFactor: 1 } }).then(expectOk);
  await http('POST', `/v1/topics/${TOPIC}/records`, { token: adminToken, json: { records: [{ value: 'seed-0' }, { value: 'seed-1' }] } }).then(expectOk);
  await http('POST', `/v1/groups/${GROUP}/offsets`, { token: adminToken, json: { offsets: [{ topic: TOPIC, partition: 0, offset: 1 }] } }).then(expectOk);
});

after(async () => {
  await broker?.stop();
  issuer.remove();
});

// ---------------------------------------------------------------- HTTP plumbing

interface HttpOptions { token?: string; tokenIn?: 'header' | 'query' | 'cookie'; json?: unknown; body?: BodyInit; contentType?: string }

function http(method: string, path: string, options: HttpOptions = {}): Promise<Response> {
  const { token, tokenIn = 'header' } = options;
  const headers: Record<string, string> = {};
  let url = `${broker.url}${path}`;
  if (token !== undefined) {
    if (tokenIn === 'header') headers.authorization = `Bearer ${token}`;
    else if (tokenIn === 'cookie') headers.cookie = `runnel_token=${token}`;
    else url += `${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}`;
  }
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  if (options.contentType) headers['content-type'] = options.contentType;
  return fetch(url, { method, headers, body });
}

async function expectOk(res: Response): Promise<unknown> {
  const text = await res.text();
  assert.ok(res.ok, `expected 2xx, got ${res.status} ${text}`);
  return text.length > 0 && text.startsWith('{') ? JSON.parse(text) : text;
}

const admin = {
  topics: async (): Promise<string[]> => ((await expectOk(await http('GET', '/v1/topics', { token: adminToken }))) as { topics: { name: string }[] }).topics.map((t) => t.name).sort(),
  highWatermark: async (): Promise<number> => ((await expectOk(await http('GET', `/v1/topics/${TOPIC}`, { token: adminToken }))) as { partitions: { highWatermark: number }[] }).partitions[0].highWatermark,
  offsets: async (group: string): Promise<string> => JSON.stringify(await expectOk(await http('GET', `/v1/groups/${group}/offsets`, { token: adminToken }))),
  members: async (group: string): Promise<number> => {
    const res = await http('GET', `/v1/groups/${group}`, { token: adminToken });
    if (res.status === 404) return 0;
    return ((await expectOk(res)) as { members: unknown[] }).members.length;
  },
};

// ---------------------------------------------------------------- audit and metrics bookkeeping

interface AuditLine { event: string; subject: string | null; ip: string; operation: string; resource: string | null; code: string; failure?: string }

function auditLines(): AuditLine[] {
  return broker.stderr.filter((l) => l.startsWith('{') && l.includes('"event"')).map((l) => JSON.parse(l) as AuditLine);
}

/** Keeps refusals under the audit log's 50 lines/s (AuthLimits.maxAuditLinesPerSec), so every refusal gets its own line. */
async function pace(): Promise<void> {
  const windowMs = 1000;
  const budget = 40;
  const recent = refusalTimes.filter((t) => Date.now() - t < windowMs);
  if (recent.length >= budget) await new Promise((r) => setTimeout(r, windowMs - (Date.now() - recent[recent.length - budget]) + 20));
}

/** Records what a cell saw refused and checks its audit line (one per refusal, never more). */
async function audited(before: number, seen: { kind: TokenKind; refusedAs: ErrorName | null; subject?: string }, what: string): Promise<void> {
  const { kind, refusedAs } = seen;
  if (refusedAs === null) {
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(auditLines().length, before, `${what}: served, so no audit line`);
    return;
  }
  const isAuthentication = refusedAs === 'SASL_AUTHENTICATION_FAILED';
  assert.ok(isAuthentication || Object.values(REFUSAL).includes(refusedAs), `${what}: answered ${refusedAs}, which is neither an authentication nor an authorization refusal`);
  refusalTimes.push(Date.now());
  if (isAuthentication) refusals[kind === 'expired' ? 'expired' : 'authentication']++;
  else refusals.authorization++;
  const deadline = Date.now() + 5000;
  while (auditLines().length < before + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const lines = auditLines().slice(before);
  assert.equal(lines.length, 1, `${what}: exactly one audit line for the refusal (${refusedAs}), got ${JSON.stringify(lines)}\n${broker.log()}`);
  const [line] = lines;
  assert.equal(line.code, refusedAs, `${what}: audit code`);
  assert.match(line.ip, /127\.0\.0\.1/, `${what}: audit ip`);
  if (isAuthentication) {
    assert.deepEqual([line.event, line.subject, line.operation, line.resource, line.failure], ['authentication_failed', null, 'authenticate', null, FAILURE_OF[kind]], `${what}: audit line ${JSON.stringify(line)}`);
  } else {
    assert.equal(line.event, 'authorization_failed', what);
    assert.equal(line.subject, seen.subject ?? 'matrix-other', `${what}: audit subject`);
    assert.ok(line.operation.length > 0 && line.resource !== null, `${what}: names the operation and resource: ${JSON.stringify(line)}`);
  }
}

/** Runs one cell as its own test, `todo` when listed in TODO. */
function cellTest(id: string, body: () => Promise<void>): void {
  const todo = TODO[id];
  test(id, todo === undefined ? {} : { todo }, async () => {
    await pace();
    await body();
  });
}

// ---------------------------------------------------------------- WebSocket cells

interface WsSeen {
  /** The refusal the broker answered with (on the request or connection-level), or null. */
  refusedAs: ErrorName | null;
  /** The refusal came on the request itself (its answer frame or an error frame with its requestId). */
  onRequest: boolean;
  closeCode: number | null;
  closeReason: string;
  /** Frames other than error frames that answered the request (auth cells: must be none). */
  answers: BrokerFrame[];
}

async function connect(token: string | undefined): Promise<TestClient> {
  const c = await TestClient.connect(broker.wsUrl, { hello: false });
  c.send({ type: 'hello', minVersion: MIN_PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: 'matrix', token: token ?? '' });
  return c;
}

/** A request frame of each op, for `requestId` (0 for frames without one). */
function frameOf(op: WsOp, requestId: number, member: { memberId: string; generationId: number }): ClientFrame {
  switch (op) {
    case 'metadataRequest': return { type: 'metadataRequest', requestId, topics: [TOPIC], allowAutoTopicCreation: 0 };
    case 'initProducer': return { type: 'initProducer', requestId, producerId: -1, producerEpoch: -1, producerSecret: '' };
    case 'produce': return { type: 'produce', requestId, topic: TOPIC, partition: 0, acks: -1, batch: makeBatch(['ws']) };
    case 'subscribe': return { type: 'subscribe', requestId, topic: TOPIC, partition: 0, topicId: '', from: { kind: 'latest' }, creditBytes: 65536 };
    case 'credit': return { type: 'credit', topic: TOPIC, partition: 0, bytes: 4096 };
    case 'unsubscribe': return { type: 'unsubscribe', requestId, topic: TOPIC, partition: 0 };
    case 'offsetCommit': return { type: 'offsetCommit', requestId, group: GROUP, generationId: -1, memberId: '', offsets: [{ topic: TOPIC, partition: 0, offset: 2, metadata: 'ws' }] };
    case 'offsetFetch': return { type: 'offsetFetch', requestId, group: GROUP, topics: [TOPIC] };
    case 'groupJoin': return { type: 'groupJoin', requestId, group: MEMBERS_GROUP, memberId: '', topics: [TOPIC], sessionTimeoutMs: 10_000 };
    case 'groupHeartbeat': return { type: 'groupHeartbeat', group: MEMBERS_GROUP, memberId: member.memberId, generationId: member.generationId };
    case 'groupLeave': return { type: 'groupLeave', group: MEMBERS_GROUP, memberId: member.memberId };
  }
}

const hasRequestId = (op: WsOp): boolean => !['credit', 'groupHeartbeat', 'groupLeave'].includes(op) && op !== 'unsubscribe';

/** The error code an answer frame carries (metadata: its one topic's). */
function answerCode(frame: BrokerFrame): number {
  if (frame.type === 'metadata') return frame.topics[0]?.errorCode ?? 0;
  return 'errorCode' in frame ? frame.errorCode : 0;
}

/** What the state a WS op could change looks like (compared before/after a refusal). */
async function wsProbe(op: WsOp): Promise<string> {
  switch (op) {
    case 'produce': return `hw ${await admin.highWatermark()}`;
    case 'offsetCommit': return admin.offsets(GROUP);
    case 'groupJoin': return `members ${await admin.members(MEMBERS_GROUP)}`;
    default: return '';
  }
}

async function runWsCell(op: WsOp, kind: TokenKind, expected: Cell): Promise<WsSeen> {
  const token = await issuer.forKind(kind, CLIENT);
  const c = await connect(token);
  try {
    const requestId = hasRequestId(op) ? c.requestId() : 0;
    if (expected === 'auth') {
      // The attack: the frame right behind a bad hello. It must never be served.
      c.send(frameOf(op, requestId, { memberId: 'm-x', generationId: 1 }));
      await c.waitClosed(5000);
      const errors = c.frames.filter((f): f is Extract<BrokerFrame, { type: 'error' }> => f.type === 'error');
      const sasl = errors.find((f) => errorNameOf(f.errorCode) === 'SASL_AUTHENTICATION_FAILED');
      return { refusedAs: sasl ? 'SASL_AUTHENTICATION_FAILED' : null, onRequest: false, closeCode: c.closeCode, closeReason: c.closeReason, answers: c.frames.filter((f) => f.type !== 'error') };
    }
    const hello = await c.waitFor((f) => f.type === 'helloOk' || f.type === 'error', 5000);
    assert.equal(hello.type, 'helloOk', `hello with a ${kind} token: ${JSON.stringify(hello)}`);
    // Set-up a valid token needs first: a subscription to credit or leave, a membership to heartbeat or leave.
    let member = { memberId: 'm-unknown', generationId: 1 };
    if (kind === 'valid' && (op === 'credit' || op === 'unsubscribe')) assert.equal((await c.subscribe(TOPIC, 0, { kind: 'latest' })).errorCode, 0);
    if (kind === 'valid' && (op === 'groupHeartbeat' || op === 'groupLeave')) {
      const joined = await c.request<Extract<BrokerFrame, { type: 'groupAssignment' }>>(frameOf('groupJoin', 0, member) as ClientFrame & { requestId: number });
      assert.equal(joined.errorCode, 0);
      member = { memberId: joined.memberId, generationId: joined.generationId };
    }
    c.frames.splice(0);
    c.send(frameOf(op, requestId, member));
    let answer: BrokerFrame | undefined;
    if (requestId !== 0) answer = await c.waitFor((f) => 'requestId' in f && f.requestId === requestId, 1500).catch(() => undefined);
    // Everything the broker says about this frame precedes its answer to a ping sent after it.
    const nonce = Math.floor(Math.random() * 1e9);
    c.send({ type: 'ping', nonce });
    await c.waitFor((f) => f.type === 'pong' && f.nonce === nonce, 5000);
    const loose = c.frames.filter((f): f is Extract<BrokerFrame, { type: 'error' }> => f.type === 'error');
    const onRequestCode = answer === undefined ? 0 : answer.type === 'error' ? answer.errorCode : answerCode(answer);
    const code = onRequestCode !== 0 ? onRequestCode : loose[0]?.errorCode ?? 0;
    const onRequest = onRequestCode !== 0 || (requestId === 0 && loose.length > 0);
    return { refusedAs: code === 0 ? null : errorNameOf(code), onRequest, closeCode: c.closeCode, closeReason: c.closeReason, answers: answer && answer.type !== 'error' ? [answer] : [] };
  } finally {
    c.close();
  }
}

for (const [op, cells] of Object.entries(WS_MATRIX) as [WsOp, Cell[]][]) {
  TOKEN_KINDS.forEach((kind, i) => {
    const expected = cells[i];
    const id = `ws ${op} × ${kind}`;
    cellTest(id, async () => {
      const before = wsProbe(op);
      const beforeAudit = auditLines().length;
      const probeBefore = await before;
      const seen = await runWsCell(op, kind, expected);
      await audited(beforeAudit, { kind, refusedAs: seen.refusedAs }, id);
      if (expected === 'auth') {
        assert.equal(seen.refusedAs, 'SASL_AUTHENTICATION_FAILED', `${id}: hello refused`);
        assert.equal(seen.closeCode, SASL_CLOSE, `${id}: closed with SASL_AUTHENTICATION_FAILED's close code`);
        assert.equal(seen.closeReason, 'SASL_AUTHENTICATION_FAILED');
        assert.deepEqual(seen.answers.map((f) => f.type), [], `${id}: the pipelined frame was not served`);
      } else if (expected === 'ok' || expected === 'ignored') {
        assert.equal(seen.refusedAs, null, `${id}: served`);
        assert.equal(seen.closeCode, null, `${id}: connection open`);
        if (expected === 'ok' && hasRequestId(op) && op !== 'unsubscribe') assert.equal(seen.answers.length, 1, `${id}: answered`);
      } else {
        const code = REFUSAL[expected as keyof typeof REFUSAL];
        assert.equal(seen.refusedAs, code, `${id}: refused with ${code}`);
        assert.ok(seen.onRequest, `${id}: the refusal answers the request itself`);
        assert.equal(seen.closeCode, null, `${id}: a refused request does not close the connection`);
      }
      if (expected !== 'ok') assert.equal(await wsProbe(op), probeBefore, `${id}: nothing changed`);
    });
  });
}

// ---------------------------------------------------------------- HTTP cells

interface HttpRow {
  grants: RunnelClaimInput;
  request(kind: TokenKind, token: string | undefined): Promise<Response>;
  /** For a 200: `ok`, or `filtered` when the answer hides what `otherGrants` may not see. */
  served?(body: string, kind: TokenKind): Cell;
  /** What the route could change (compared before/after a refusal). */
  probe?(kind: TokenKind): Promise<string>;
  /** Runs before the cell (e.g. a topic for the delete to delete). */
  setup?(kind: TokenKind): Promise<void>;
}

const recordsPath = `/v1/topics/${TOPIC}/records`;
const hw = async () => `hw ${await admin.highWatermark()}`;
const HTTP_ROWS: Record<keyof typeof HTTP_MATRIX, HttpRow> = {
  'POST /v1/topics': {
    grants: ADMIN,
    request: (kind, token) => http('POST', '/v1/topics', { token, json: { name: `sec.created-${kind}`, partitions: 1, replicationFactor: 1 } }),
    probe: () => admin.topics().then(String),
  },
  'GET /v1/topics': {
    grants: CLIENT,
    request: (_kind, token) => http('GET', '/v1/topics', { token }),
    served: (body) => ((JSON.parse(body) as { topics: { name: string }[] }).topics.some((t) => t.name === TOPIC) ? 'ok' : 'filtered'),
  },
  'GET /v1/topics/T': { grants: CLIENT, request: (_k, token) => http('GET', `/v1/topics/${TOPIC}`, { token }) },
  'GET /v1/topics/T (runnel_token cookie)': { grants: CLIENT, request: (_k, token) => http('GET', `/v1/topics/${TOPIC}`, { token, tokenIn: 'cookie' }) },
  'DELETE /v1/topics/T': {
    grants: ADMIN,
    setup: async (kind) => { await expectOk(await http('POST', '/v1/topics', { token: adminToken, json: { name: `sec.del-${kind}`, partitions: 1, replicationFactor: 1 } })); },
    request: (kind, token) => http('DELETE', `/v1/topics/sec.del-${kind}`, { token }),
    probe: () => admin.topics().then(String),
  },
  'POST /v1/topics/T/records (JSON)': { grants: CLIENT, request: (_k, token) => http('POST', recordsPath, { token, json: { records: [{ value: 'json' }] } }), probe: hw },
  'POST /v1/topics/T/records (NDJSON)': { grants: CLIENT, request: (_k, token) => http('POST', recordsPath, { token, body: '{"value":"ndjson"}\n', contentType: 'application/x-ndjson' }), probe: hw },
  'POST /v1/topics/T/records (beacon, access_token)': {
    grants: CLIENT,
    request: (_k, token) => http('POST', recordsPath, { token, tokenIn: 'query', body: '{"records":[{"value":"beacon"}]}', contentType: 'text/plain;charset=UTF-8' }),
    probe: hw,
  },
  'POST /v1/topics/T/records?partition=0 (binary)': {
    grants: CLIENT,
    request: (_k, token) => http('POST', `${recordsPath}?partition=0`, { token, body: makeBatch(['binary']).slice().buffer, contentType: 'application/vnd.runnel.recordbatch' }),
    probe: hw,
  },
  'GET /v1/topics/T/partitions/0/records': { grants: CLIENT, request: (_k, token) => http('GET', `/v1/topics/${TOPIC}/partitions/0/records?offset=earliest`, { token }) },
  'GET /v1/topics/T/partitions/0/records (long poll)': { grants: CLIENT, request: (_k, token) => http('GET', `/v1/topics/${TOPIC}/partitions/0/records?offset=latest&maxWaitMs=200`, { token }) },
  'GET /v1/topics/T/partitions/0/stream (SSE, access_token)': { grants: CLIENT, request: (_k, token) => http('GET', `/v1/topics/${TOPIC}/partitions/0/stream?offset=earliest`, { token, tokenIn: 'query' }) },
  'GET /v1/groups': {
    grants: CLIENT,
    request: (_k, token) => http('GET', '/v1/groups', { token }),
    served: (body) => ((JSON.parse(body) as { groups: { group: string }[] }).groups.some((g) => g.group === GROUP) ? 'ok' : 'filtered'),
  },
  'GET /v1/groups/G': { grants: CLIENT, request: (_k, token) => http('GET', `/v1/groups/${GROUP}`, { token }) },
  'GET /v1/groups/G/offsets': { grants: CLIENT, request: (_k, token) => http('GET', `/v1/groups/${GROUP}/offsets?topic=${TOPIC}`, { token }) },
  'POST /v1/groups/G/offsets': {
    grants: CLIENT,
    request: (_k, token) => http('POST', `/v1/groups/${GROUP}/offsets`, { token, json: { offsets: [{ topic: TOPIC, partition: 0, offset: 2, metadata: 'http' }] } }),
    probe: () => admin.offsets(GROUP),
  },
  'GET /metrics': { grants: ADMIN, request: (_k, token) => http('GET', '/metrics', { token }) },
};

/** Reads a response: SSE only up to its first chunk (the stream stays open otherwise). */
async function bodyOf(res: Response): Promise<string> {
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return res.text();
  const reader = res.body!.getReader();
  const first = await reader.read();
  await reader.cancel();
  return new TextDecoder().decode(first.value ?? new Uint8Array());
}

for (const [route, cells] of Object.entries(HTTP_MATRIX)) {
  TOKEN_KINDS.forEach((kind, i) => {
    const expected = cells[i];
    const id = `http ${route} × ${kind}`;
    const row = HTTP_ROWS[route];
    cellTest(id, async () => {
      await row.setup?.(kind);
      const probeBefore = await row.probe?.(kind);
      const beforeAudit = auditLines().length;
      const token = await issuer.forKind(kind, row.grants);
      const res = await row.request(kind, token);
      const body = await bodyOf(res);
      const code = res.status >= 400 && body.startsWith('{') ? (JSON.parse(body) as { error?: { code?: ErrorName } }).error?.code ?? null : null;
      const refusedAs = res.status === 401 || res.status === 403 ? code : null;
      await audited(beforeAudit, { kind, refusedAs }, id);
      if (expected === 'auth') {
        assert.deepEqual([res.status, code], [401, 'SASL_AUTHENTICATION_FAILED'], `${id}: ${body}`);
      } else if (expected === 'ok' || expected === 'filtered') {
        assert.ok(res.status >= 200 && res.status < 300, `${id}: served, got ${res.status} ${body}`);
        assert.equal(row.served?.(body, kind) ?? 'ok', expected, `${id}: ${body.slice(0, 300)}`);
      } else {
        assert.deepEqual([res.status, code], [403, REFUSAL[expected as keyof typeof REFUSAL]], `${id}: ${body}`);
      }
      if (expected !== 'ok' && row.probe) assert.equal(await row.probe(kind), probeBefore, `${id}: nothing changed`);
    });
  });
}

// ---------------------------------------------------------------- grant edges

/** Tokens that hold some of what an operation needs but not all. */
const SUBSCRIBE_ONLY: RunnelClaimInput = { subscribe: ['sec.*'], group: ['sec-*'] };
const PUBLISH_ONLY: RunnelClaimInput = { publish: ['sec.*'] };
const GROUP_ONLY: RunnelClaimInput = { publish: ['other.*'], subscribe: ['other.*'], group: ['sec-*'] };

/** `cell` may also read `TOPIC after 200`: refused inside a stream already answered 200. */
interface EdgeSeen { cell: Cell | `${Cell} after 200`; refusedAs: ErrorName | null; detail: string }
interface Edge { id: string; grants: RunnelClaimInput; expect: Cell; run(token: string): Promise<EdgeSeen>; todo?: string }

function cellOf(refusedAs: ErrorName | null, filtered: boolean): Cell {
  if (refusedAs === null) return filtered ? 'filtered' : 'ok';
  if (refusedAs === 'SASL_AUTHENTICATION_FAILED') return 'auth';
  return (Object.keys(REFUSAL) as (keyof typeof REFUSAL)[]).find((k) => REFUSAL[k] === refusedAs) ?? (refusedAs as Cell);
}

async function wsEdge(token: string, frame: (requestId: number) => ClientFrame & { requestId: number }, isFiltered: (f: BrokerFrame) => boolean = () => false): Promise<EdgeSeen> {
  const c = await connect(token);
  try {
    assert.equal((await c.waitFor((f) => f.type === 'helloOk' || f.type === 'error')).type, 'helloOk');
    const answer = await c.request(frame(0), 3000);
    const code = answer.type === 'error' ? answer.errorCode : answerCode(answer);
    const refusedAs = code !== 0 ? errorNameOf(code) : null;
    return { cell: cellOf(refusedAs, isFiltered(answer)), refusedAs, detail: JSON.stringify(answer).slice(0, 300) };
  } finally {
    c.close();
  }
}

/** An HTTP answer as a cell; an SSE stream is read for up to 2 s, and an `event: error` in it is that refusal `after 200`. */
async function httpEdge(res: Response, isFiltered: (body: string) => boolean = () => false): Promise<EdgeSeen> {
  let body: string;
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const reader = res.body!.getReader();
    body = '';
    const deadline = Date.now() + 2000;
    while (!body.includes('event: error') && Date.now() < deadline) {
      const next = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now()))]);
      if (next === null || next.done) break;
      body += new TextDecoder().decode(next.value);
    }
    await reader.cancel();
    const streamed = /event: error\ndata: (.*)/.exec(body);
    if (streamed) {
      const refusedAs = (JSON.parse(streamed[1]) as { code: ErrorName }).code;
      return { cell: `${cellOf(refusedAs, false)} after 200`, refusedAs, detail: `${res.status}, then in the stream: ${body}` };
    }
  } else body = await res.text();
  if (res.status === 401 || res.status === 403) {
    const refusedAs = (JSON.parse(body) as { error: { code: ErrorName } }).error.code;
    return { cell: cellOf(refusedAs, false), refusedAs, detail: body };
  }
  assert.ok(res.ok, `got ${res.status} ${body}`);
  return { cell: cellOf(null, isFiltered(body)), refusedAs: null, detail: body.slice(0, 300) };
}

const EDGES: Edge[] = [
  {
    id: 'ws initProducer without any publish grant', grants: SUBSCRIBE_ONLY, expect: 'CLUSTER',
    run: (t) => wsEdge(t, (requestId) => ({ type: 'initProducer', requestId, producerId: -1, producerEpoch: -1, producerSecret: '' })),
  },
  {
    id: 'ws produce with a subscribe-only token', grants: SUBSCRIBE_ONLY, expect: 'TOPIC',
    run: (t) => wsEdge(t, (requestId) => ({ type: 'produce', requestId, topic: TOPIC, partition: 0, acks: -1, batch: makeBatch(['edge']) })),
  },
  {
    id: 'ws subscribe with a publish-only token', grants: PUBLISH_ONLY, expect: 'TOPIC',
    run: (t) => wsEdge(t, (requestId) => ({ type: 'subscribe', requestId, topic: TOPIC, partition: 0, topicId: '', from: { kind: 'latest' }, creditBytes: 1024 })),
  },
  {
    id: 'ws metadataRequest for its topic with a subscribe-only token (a consumer must learn the partitions)', grants: SUBSCRIBE_ONLY, expect: 'ok',
    run: (t) => wsEdge(t, (requestId) => ({ type: 'metadataRequest', requestId, topics: [TOPIC], allowAutoTopicCreation: 0 })),
  },
  {
    id: 'ws groupJoin with a group grant but no subscribe grant on its topic', grants: GROUP_ONLY, expect: 'TOPIC',
    run: (t) => wsEdge(t, (requestId) => ({ type: 'groupJoin', requestId, group: 'sec-edge-join', memberId: '', topics: [TOPIC], sessionTimeoutMs: 10_000 })),
  },
  {
    id: 'ws offsetFetch of all topics with a group grant only: offsets of topics it may not describe are hidden', grants: GROUP_ONLY, expect: 'filtered',
    run: (t) => wsEdge(t, (requestId) => ({ type: 'offsetFetch', requestId, group: GROUP, topics: [] }), (f) => f.type === 'offsetFetchResult' && !f.offsets.some((o) => o.topic === TOPIC)),
  },
  {
    id: 'http GET /v1/groups/G/offsets (all topics) with a group grant only', grants: GROUP_ONLY, expect: 'filtered',
    run: async (t) => httpEdge(await http('GET', `/v1/groups/${GROUP}/offsets`, { token: t }), (body) => !body.includes(TOPIC)),
  },
  {
    id: 'http GET /v1/groups/G with a group grant only', grants: GROUP_ONLY, expect: 'filtered',
    run: async (t) => httpEdge(await http('GET', `/v1/groups/${GROUP}`, { token: t }), (body) => !body.includes(TOPIC)),
  },
  {
    id: 'http GET fetch with a publish-only token', grants: PUBLISH_ONLY, expect: 'TOPIC',
    run: async (t) => httpEdge(await http('GET', `/v1/topics/${TOPIC}/partitions/0/records`, { token: t })),
  },
  {
    id: 'http SSE with a publish-only token is refused before the stream starts', grants: PUBLISH_ONLY, expect: 'TOPIC',
    run: async (t) => httpEdge(await http('GET', `/v1/topics/${TOPIC}/partitions/0/stream?offset=earliest`, { token: t, tokenIn: 'query' })),
  },
  {
    id: 'http GET /metrics with a non-admin client token', grants: CLIENT, expect: 'CLUSTER',
    run: async (t) => httpEdge(await http('GET', '/metrics', { token: t })),
  },
];

for (const edge of EDGES) {
  test(`edge: ${edge.id}`, edge.todo === undefined ? {} : { todo: edge.todo }, async () => {
    await pace();
    const beforeAudit = auditLines().length;
    const result = await edge.run(await issuer.rs256('matrix-edge', edge.grants));
    await audited(beforeAudit, { kind: 'otherGrants', refusedAs: result.refusedAs, subject: 'matrix-edge' }, edge.id);
    assert.equal(result.cell, edge.expect, `${edge.id}: ${result.detail}`);
  });
}

test('ws: a frame before hello is refused INVALID_REQUEST and not served', async () => {
  const c = await TestClient.connect(broker.wsUrl, { hello: false });
  try {
    const before = await admin.highWatermark();
    const answer = await c.request({ type: 'produce', requestId: 0, topic: TOPIC, partition: 0, acks: -1, batch: makeBatch(['early']) });
    assert.equal(answer.type === 'error' && errorNameOf(answer.errorCode), 'INVALID_REQUEST');
    assert.equal(await admin.highWatermark(), before);
  } finally {
    c.close();
  }
});

test('http: an HS256 token from `runnel token create` (the --auth-secret path) is accepted', async () => {
  const res = await http('GET', `/v1/topics/${TOPIC}`, { token: await issuer.hs256('cli-user', CLIENT) });
  assert.equal(res.status, 200, await res.text());
});

// ---------------------------------------------------------------- totals

test('every refusal above wrote one audit line, runnel_auth_failures_total counts them by reason, no log line holds a token', async () => {
  const metrics = await (await http('GET', '/metrics', { token: adminToken })).text();
  const counter = (reason: string): number => Number(new RegExp(`^runnel_auth_failures_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
  const lines = auditLines();
  const suppressed = lines.filter((l) => l.event === 'audit_suppressed');
  assert.deepEqual(suppressed, [], 'pacing kept the audit log under its rate bound');
  assert.equal(lines.filter((l) => l.event === 'authentication_failed').length, refusals.authentication + refusals.expired, 'authentication audit lines');
  assert.equal(lines.filter((l) => l.event === 'authorization_failed').length, refusals.authorization, 'authorization audit lines');
  assert.deepEqual(
    { authentication: counter('authentication'), expired: counter('expired'), authorization: counter('authorization') },
    refusals,
    'runnel_auth_failures_total{reason} = the refusals the tests saw',
  );
  assert.ok(refusals.authentication > 100 && refusals.authorization > 20, `the matrix refused a lot: ${JSON.stringify(refusals)}`);
  const everything = [...broker.stdout, ...broker.stderr].join('\n');
  for (const token of issuer.everyToken()) {
    for (const part of [token, ...token.split('.').filter((p) => p.length >= 16)]) {
      assert.ok(!everything.includes(part), 'a token (or a part of one) appeared in the broker output');
    }
  }
  // State: only the valid requests changed anything.
  assert.deepEqual(await admin.topics(), [TOPIC, 'sec.created-valid', ...TOKEN_KINDS.filter((k) => k !== 'valid').map((k) => `sec.del-${k}`)].sort());
});

// ---------------------------------------------------------------- expiry while connected

test('a token whose exp passes while its socket is open: closed TOKEN_EXPIRED (4909) within about the sweep interval', async () => {
  assert.equal(EXPIRED_CLOSE, 4909);
  const expSec = nowSec() + 2;
  const c = await connect(await issuer.rs256('short-lived', CLIENT, expSec));
  try {
    assert.equal((await c.waitFor((f) => f.type === 'helloOk' || f.type === 'error')).type, 'helloOk');
    assert.equal((await c.subscribe(TOPIC, 0, { kind: 'latest' })).errorCode, 0, 'served while the token is valid');
    await c.waitClosed(expSec * 1000 - Date.now() + 5000);
    const closedAt = Date.now();
    assert.equal(c.closeCode, EXPIRED_CLOSE);
    assert.equal(c.closeReason, 'TOKEN_EXPIRED');
    const error = c.frames.find((f) => f.type === 'error');
    assert.equal(error?.type === 'error' && errorNameOf(error.errorCode), 'TOKEN_EXPIRED', 'an error frame says why before the close');
    assert.ok(closedAt >= expSec * 1000, `not closed before exp (${closedAt - expSec * 1000} ms)`);
    // backpressureSweepMs is 250 by default; a loaded 2-core machine gets a second of slack.
    assert.ok(closedAt - expSec * 1000 < 250 + 1000, `closed ${closedAt - expSec * 1000} ms after exp`);
  } finally {
    c.close();
  }
  const metrics = await (await http('GET', '/metrics', { token: adminToken })).text();
  assert.match(metrics, new RegExp(`^runnel_auth_failures_total\\{reason="expired"\\} ${refusals.expired + 1}$`, 'm'), 'the expiry close is counted as reason expired');
  assert.equal(ErrorTable.TOKEN_EXPIRED.code, 1009);
});

test('refresh over the open socket keeps the connection past the first token\'s exp', async () => {
  const expSec = nowSec() + 2;
  const c = await connect(await issuer.rs256('refresher', CLIENT, expSec));
  try {
    assert.equal((await c.waitFor((f) => f.type === 'helloOk' || f.type === 'error')).type, 'helloOk');
    const refreshed = await c.request({ type: 'authenticate', requestId: 0, token: await issuer.rs256('refresher', CLIENT) } as ClientFrame & { requestId: number });
    assert.equal('errorCode' in refreshed && refreshed.errorCode, 0, JSON.stringify(refreshed));
    await new Promise((r) => setTimeout(r, expSec * 1000 - Date.now() + 600));
    assert.equal(c.closeCode, null, 'still open past the first token\'s exp');
    assert.equal((await c.subscribe(TOPIC, 0, { kind: 'latest' })).errorCode, 0, 'and served');
    // A refresh naming another subject closes the connection (a connection never changes whose it is).
    c.send({ type: 'authenticate', requestId: c.requestId(), token: await issuer.rs256('someone-else', CLIENT) } as ClientFrame);
    await c.waitClosed(5000);
    assert.equal(c.closeCode, SASL_CLOSE);
  } finally {
    c.close();
  }
});
