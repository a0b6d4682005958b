/**
 * The message catalogue: every message that crosses the host/enclave boundary, declared once.
 *
 * Each entry is a call (a request and its response, sharing a call id) or an event (no reply),
 * with its numeric kind, its direction and its typed fields. Fields are encoded positionally, in
 * the order they are written here (docs/boundary.md). Adding a message is one entry in `MESSAGES`;
 * the codec tables and the TypeScript types below are derived from it. Kinds are never reused.
 *
 * Frame kinds on the wire: a request or event carries its entry's kind (1..0x7fff); a response
 * carries `kind | RESPONSE_BIT`; the one generic error reply carries `ERROR_KIND` (0x8000).
 */

/** Version byte at the start of every frame. Bumped only for an incompatible catalogue change. */
export const CATALOGUE_VERSION = 1;
/** Set on the kind of a response frame. */
export const RESPONSE_BIT = 0x8000;
/** Kind of the generic error reply: the response to no call in particular (kind 0 is reserved). */
export const ERROR_KIND = 0x8000;

export type FieldType = 'u8' | 'u32' | 'u53' | 'bool' | 'bytes' | 'string' | 'bytesList';
export type Direction = 'host->enclave' | 'enclave->host';
export type Fields = { readonly [name: string]: FieldType };

export interface CallSpec<Q extends Fields = Fields, R extends Fields = Fields> {
  readonly type: 'call';
  readonly kind: number;
  readonly direction: Direction;
  readonly request: Q;
  readonly response: R;
}

export interface EventSpec<F extends Fields = Fields> {
  readonly type: 'event';
  readonly kind: number;
  readonly direction: Direction;
  readonly fields: F;
}

function call<const D extends Direction, const Q extends Fields, const R extends Fields>(
  kind: number,
  direction: D,
  request: Q,
  response: R,
): CallSpec<Q, R> & { readonly direction: D } {
  return { type: 'call', kind, direction, request, response };
}

function event<const D extends Direction, const F extends Fields>(
  kind: number,
  direction: D,
  fields: F,
): EventSpec<F> & { readonly direction: D } {
  return { type: 'event', kind, direction, fields };
}

const H2E = 'host->enclave';
const E2H = 'enclave->host';

/** The catalogue. Names are fixed: other code calls them by name. */
export const MESSAGES = {
  // host -> enclave calls (the analogue of ECALLs)
  // 0x0101 (enclave.start without the sealed service state, before issue 4) is retired.
  // sealedNode/sealedService empty in = first start / genesis; empty out = unchanged.
  'enclave.start': call(
    0x0105,
    H2E,
    { nodeId: 'string', sealedNode: 'bytes', sealedService: 'bytes' },
    { identityPublicKey: 'bytes', sealedNode: 'bytes', sealedService: 'bytes' },
  ),
  'enclave.evidence': call(
    0x0102,
    H2E,
    { nonce: 'bytes' },
    { evidence: 'bytes', identityPublicKey: 'bytes' },
  ),
  'enclave.ping': call(0x0103, H2E, { payload: 'bytes' }, { payload: 'bytes' }),
  'enclave.stop': call(0x0104, H2E, {}, {}),
  // host -> enclave: the logchain service (docs/receipts.md). Public metadata only: hashes, keys
  // and indexes that anyone may see. status: hashes are 32 bytes, servicePublicKey SEC1 65 bytes.
  'service.status': call(
    0x0106,
    H2E,
    {},
    {
      index: 'u53',
      term: 'u53',
      lastSigned: 'u53',
      stateHash: 'bytes',
      treeRoot: 'bytes',
      serviceIdentity: 'bytes',
      servicePublicKey: 'bytes',
      epoch: 'u53',
      generation: 'u32',
    },
  ),
  'service.receipt': call(0x0107, H2E, { txid: 'string' }, { receipt: 'bytes' }), // txid "term.index"
  'service.consistency': call(0x0108, H2E, { from: 'u53', to: 'u53' }, { proof: 'bytesList' }),
  'service.tick': call(0x0109, H2E, {}, {}), // sign iff unsigned entries exist (the host's timer)
  // The enclave has the host persist the new state (service.persist) before the rotation entry
  // commits; the response repeats the blob (docs/boundary.md, "Service calls").
  'service.rotateSecret': call(
    0x010a,
    H2E,
    {},
    { sealedService: 'bytes', txid: 'string', generation: 'u32' },
  ),
  // host -> enclave: apps (docs/node-api.md "Apps"). apps.open right after enclave.start:
  // operatorKey 65 bytes or empty (none given); txid '' when nothing was recorded.
  'apps.open': call(0x010b, H2E, { operatorKey: 'bytes' }, { apps: 'u32', txid: 'string' }),
  // request: COSE_Sign1 by the operator key; module: the wasm bytes. codeId 32 bytes.
  'apps.deploy': call(
    0x010c,
    H2E,
    { request: 'bytes', module: 'bytes' },
    { txid: 'string', app: 'string', codeId: 'bytes', index: 'u53', migrated: 'bool' },
  ),
  // app '' = every app; info: CBOR [[app, [[codeId, index], …newest first], loaded], …].
  'apps.info': call(0x010d, H2E, { app: 'string' }, { info: 'bytes' }),
  // host -> enclave: secure connections (docs/scp.md, docs/node-api.md "/v1/scp"). The host relays
  // opaque SCP frames of one WebSocket: scp.open when it connects (SCP_SESSIONS when the enclave's
  // table is full), scp.frame per binary message in arrival order (the enclave processes a
  // session's frames in that order), scp.close once the socket is gone.
  'scp.open': call(0x010e, H2E, {}, { session: 'u53' }),
  // `ms`: the host's clock when it relayed the frame (untrusted, like host.time; the enclave's
  // clock takes it as a read that came with the message, so handling the frame needs no sync read).
  'scp.frame': call(0x010f, H2E, { session: 'u53', frame: 'bytes', ms: 'u53' }, {}),
  'scp.close': call(0x0110, H2E, { session: 'u53' }, {}),
  // host -> enclave: send the apps' debug output (AssemblyScript `trace`) as app.trace events.
  // Simulation only: it leaks app data by design (docs/node-api.md "App trace"); the enclave
  // refuses it (INVALID_INPUT) when its platform's self report names any other platform.
  'apps.trace': call(0x0111, H2E, { enable: 'bool' }, { enabled: 'bool' }),
  // enclave -> host calls (the analogue of OCALLs); each may be sent async or sync
  'platform.self': call(
    0x0201,
    E2H,
    {},
    { platform: 'string', measurement: 'bytes', signer: 'bytes', product: 'u32', svn: 'u32' },
  ),
  'platform.sealKey': call(
    0x0202,
    E2H,
    { policy: 'u8', svn: 'u32', keyId: 'bytes' },
    { key: 'bytes' },
  ),
  'platform.report': call(0x0203, E2H, { reportData: 'bytes' }, { evidence: 'bytes' }),
  'platform.counterRead': call(0x0204, E2H, { name: 'string' }, { value: 'u53' }),
  'platform.counterIncrement': call(0x0205, E2H, { name: 'string' }, { value: 'u53' }),
  'host.ping': call(0x0206, E2H, { payload: 'bytes' }, { payload: 'bytes' }),
  // enclave -> host: the record store (docs/boundary.md, "Store calls"); opaque bytes only.
  // get/getMany are meant for callSync. getMany: `found` one byte 0/1 per key, one value per key
  // (empty when absent). write: `types` one byte per op (0 put, 1 del), `values` one per put, in
  // order. iterate: one page; empty gte/lt = open end; `done` = nothing after this page.
  'store.get': call(0x0207, E2H, { key: 'bytes' }, { found: 'bool', value: 'bytes' }),
  'store.getMany': call(
    0x0208,
    E2H,
    { keys: 'bytesList' },
    { found: 'bytes', values: 'bytesList' },
  ),
  'store.write': call(
    0x0209,
    E2H,
    { types: 'bytes', keys: 'bytesList', values: 'bytesList', sync: 'bool' },
    {},
  ),
  'store.iterate': call(
    0x020a,
    E2H,
    { gte: 'bytes', lt: 'bytes', limit: 'u32' },
    { keys: 'bytesList', values: 'bytesList', done: 'bool' },
  ),
  // enclave -> host: write the sealed service state durably (atomic) before answering; the
  // enclave awaits it during service.rotateSecret, before the rotation entry commits.
  'service.persist': call(0x020b, E2H, { sealedService: 'bytes' }, {}),
  // enclave -> host: the host's wall clock in ms since the epoch (untrusted: the app runtime
  // forces it monotonic and apps never decide on time alone, DESIGN.md §11); called sync.
  'host.time': call(0x020c, E2H, {}, { ms: 'u53' }),
  // enclave -> host events (no reply)
  log: event(0x0301, E2H, { level: 'u8', event: 'string' }), // level: pino 10..60; event: a fixed name
  // enclave -> host: SCP frames for a session's socket, in order; scp.end closes the socket after
  // the frames queued before it (code: an ERROR_CODES name, or 'OK' for a normal close).
  'scp.send': event(0x0302, E2H, { session: 'u53', frame: 'bytes' }),
  'scp.end': event(0x0303, E2H, { session: 'u53', code: 'string' }),
  // enclave -> host: one line of an app's `trace` output, only after apps.trace enabled it (app
  // DATA, simulation only).
  'app.trace': event(0x0304, E2H, { app: 'string', message: 'string' }),
} as const;

/** Fields of the generic error reply (kind ERROR_KIND), the answer to any failed call. */
export const ERROR_FIELDS = { code: 'string', message: 'string' } as const;

/** `platform.sealKey` policies. */
export const SEAL_POLICY = { code: 1, signer: 2 } as const;

export type Catalogue = typeof MESSAGES;
export type MessageName = keyof Catalogue;

type ValueOf<T extends FieldType> = T extends 'bytes'
  ? Uint8Array
  : T extends 'bytesList'
    ? Uint8Array[]
    : T extends 'string'
      ? string
      : T extends 'bool'
        ? boolean
        : number;

/** The TypeScript value of a field table: `{ payload: 'bytes' }` -> `{ payload: Uint8Array }`. */
export type ValuesOf<F extends Fields> = { -readonly [K in keyof F]: ValueOf<F[K]> };

type NamesWhere<S> = { [N in MessageName]: Catalogue[N] extends S ? N : never }[MessageName];

/** Calls made by the host, answered by the enclave. */
export type HostToEnclaveCall = NamesWhere<{ type: 'call'; direction: 'host->enclave' }>;
/** Calls made by the enclave, answered by the host. */
export type EnclaveToHostCall = NamesWhere<{ type: 'call'; direction: 'enclave->host' }>;
export type CallName = HostToEnclaveCall | EnclaveToHostCall;
/** Events sent by the enclave to the host. */
export type EventName = NamesWhere<{ type: 'event'; direction: 'enclave->host' }>;

type CallOf<N extends CallName> = Extract<Catalogue[N], { type: 'call' }>;
export type CallRequest<N extends CallName> = ValuesOf<CallOf<N>['request']>;
export type CallResponse<N extends CallName> = ValuesOf<CallOf<N>['response']>;
export type EventFields<N extends EventName> = ValuesOf<
  Extract<Catalogue[N], { type: 'event' }>['fields']
>;
export type ErrorReply = ValuesOf<typeof ERROR_FIELDS>;
