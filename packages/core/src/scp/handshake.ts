/**
 * The SCP v1 handshake state machines (docs/scp.md §Handshake): frames in, frames out, the world
 * (randomness, ECDH, AEAD, signing) injected. Each receive() accepts only the frame its state
 * expects; the first failure poisons the machine (state 'failed', every later call rejects), so a
 * hostile relay gets one attempt per handshake and never a session.
 */
import { concatBytes, constantTimeEqual } from '../bytes.js';
import { encodeCbor } from '../cbor.js';
import { InvalidInputError } from '../errors.js';
import { sha256 } from '../hash.js';
import {
  arrayOf,
  bytesOf,
  cborOf,
  decodeClientHello,
  decodeServerHello,
  encodeClientHello,
  encodeServerHello,
  frame,
  frameBody,
  MAC_LENGTH,
  NONCE_LENGTH,
  publicKeyOf,
  SIGNATURE_LENGTH,
} from './codec.js';
import {
  CLIENT_SIG_CONTEXT,
  type HandshakeSecrets,
  handshakeSecrets,
  hmacSha256,
  SERVER_SIG_CONTEXT,
  trafficSecrets,
} from './keys.js';
import { createSession, resolveLimits } from './session.js';
import {
  type ClientHandshake,
  type ClientHandshakeOptions,
  FRAME,
  SCP_VERSION,
  type ScpCrypto,
  ScpError,
  type ScpSession,
  type ServerAuth,
  type ServerHandshake,
  type ServerHandshakeOptions,
} from './types.js';

/** Versions this implementation speaks, ascending. */
const SUPPORTED: readonly number[] = [SCP_VERSION];
const AAD_SA = Uint8Array.of(FRAME.SA);
const AAD_CA = Uint8Array.of(FRAME.CA);
const ZERO = Uint8Array.of(0);

type Ephemeral = Awaited<ReturnType<ScpCrypto['ephemeral']>>;

function fail(message: string, cause?: unknown): never {
  throw new ScpError('SCP_HANDSHAKE', message, cause === undefined ? undefined : { cause });
}

async function shared(
  eph: { deriveShared(peer: Uint8Array): Promise<Uint8Array> },
  peer: Uint8Array,
): Promise<Uint8Array> {
  try {
    return await eph.deriveShared(peer);
  } catch (e) {
    return fail('the peer ephemeral key is not a valid P-256 point', e);
  }
}

async function openHs(
  crypto: ScpCrypto,
  key: Uint8Array,
  iv: Uint8Array,
  aad: Uint8Array,
  body: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  try {
    return await (await crypto.aeadKey(key)).open(iv, aad, body);
  } catch (e) {
    return fail(`${what} failed authentication: the handshake was altered in transit`, e);
  }
}

/**
 * Serializes calls and poisons on the first failure. Invariant: `error` is set exactly when some
 * call failed; no call runs after that.
 */
class Guard {
  #tail: Promise<unknown> = Promise.resolve();
  #error: unknown;

  run<T>(f: () => Promise<T>): Promise<T> {
    const go = async (): Promise<T> => {
      if (this.#error !== undefined) {
        throw new ScpError(
          'SCP_HANDSHAKE',
          'this handshake failed earlier: start a new connection',
          {
            cause: this.#error,
          },
        );
      }
      try {
        return await f();
      } catch (e) {
        this.#error = e;
        throw e;
      }
    };
    const r = this.#tail.then(go, go);
    this.#tail = r.catch(() => undefined);
    return r;
  }
}

function checkVersions(v: readonly number[] | undefined): readonly number[] {
  const list = v ?? SUPPORTED;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > 16 ||
    list.some(
      (x, i) => !Number.isSafeInteger(x) || x < 1 || (i > 0 && x <= (list[i - 1] as number)),
    )
  ) {
    throw new InvalidInputError(
      'versions must be 1 to 16 ascending distinct integers from 1 to 2^53 - 1',
    );
  }
  return [...list];
}

/** Client handshake: start() → CH; receive(SH) → nothing; receive(SA) → CA and the session. */
export function clientHandshake(o: ClientHandshakeOptions): ClientHandshake {
  if (typeof o?.authorize !== 'function')
    throw new InvalidInputError('clientHandshake needs authorize()');
  const versions = checkVersions(o.versions);
  const limits = resolveLimits(o.limits);
  const { crypto, identity } = o;
  const guard = new Guard();
  /** start → wait-sh (CH sent; its ephemeral key) → wait-sa (SH received; the handshake
   * secrets) → done. Each state carries exactly what the next step needs. */
  let state:
    | { name: 'start' }
    | { name: 'wait-sh'; ch: Uint8Array; eph: Ephemeral }
    | { name: 'wait-sa'; ch: Uint8Array; sh: Uint8Array; secrets: HandshakeSecrets }
    | { name: 'done' } = { name: 'start' };

  async function onServerHello(
    f: Uint8Array,
    { ch, eph }: { ch: Uint8Array; eph: Ephemeral },
  ): Promise<{ send: Uint8Array[] }> {
    const hello = decodeServerHello(f);
    if (!versions.includes(hello.version)) {
      throw new ScpError(
        'SCP_VERSION',
        `the node chose version ${hello.version}, not offered (${versions.join(', ')})`,
      );
    }
    const z = await shared(eph, hello.ephemeral);
    const sh = f.slice();
    state = { name: 'wait-sa', ch, sh, secrets: handshakeSecrets(sha256(ch, sh), z) };
    return { send: [] };
  }

  async function onServerAuth(
    f: Uint8Array,
    { ch, sh, secrets: s }: { ch: Uint8Array; sh: Uint8Array; secrets: HandshakeSecrets },
  ): Promise<{ send: Uint8Array[]; session: ScpSession }> {
    const body = frameBody(f, FRAME.SA, 'SA', 'SCP_HANDSHAKE');
    const pt = await openHs(crypto, s.sHsKey, s.sHsIv, AAD_SA, body, 'SA');
    const c = 'SCP_HANDSHAKE';
    const [ev, nk, sk, end, sigS, finS] = arrayOf(cborOf(pt, 'SA', c), 6, 'SA', c);
    const evidence = bytesOf(ev, undefined, 'SA evidence', c);
    const nodeKey = publicKeyOf(nk, 'SA node key', c);
    const serviceKey = publicKeyOf(sk, 'SA service key', c);
    const endorsement = bytesOf(end, undefined, 'SA endorsement', c);
    const sig = bytesOf(sigS, SIGNATURE_LENGTH, 'SA signature', c);
    const fin = bytesOf(finS, MAC_LENGTH, 'SA finished', c);
    const sap = encodeCbor([evidence, nodeKey, serviceKey, endorsement]);
    const th2 = sha256(ch, sh, sap);
    if (!(await crypto.verify(nodeKey, concatBytes(SERVER_SIG_CONTEXT, ZERO, th2), sig))) {
      fail(
        'the server signature over the transcript does not verify (altered handshake or downgrade)',
      );
    }
    const sigC = encodeCbor(sig);
    if (!constantTimeEqual(hmacSha256(s.sFin, sha256(ch, sh, sap, sigC)), fin)) {
      fail('the server finished MAC does not verify');
    }
    await o.authorize({
      nodeKey,
      serviceKey,
      serviceIdentity: sha256(serviceKey),
      evidence,
      endorsement,
    });
    const cap = encodeCbor([identity.publicKey]);
    const finSC = encodeCbor(fin);
    const th4 = sha256(ch, sh, sap, sigC, finSC, cap);
    const clientSig = await identity.sign(concatBytes(CLIENT_SIG_CONTEXT, ZERO, th4));
    const clientSigC = encodeCbor(clientSig);
    const clientFin = hmacSha256(s.cFin, sha256(ch, sh, sap, sigC, finSC, cap, clientSigC));
    const ca = frame(
      FRAME.CA,
      await (await crypto.aeadKey(s.cHsKey)).seal(
        s.cHsIv,
        AAD_CA,
        encodeCbor([identity.publicKey, clientSig, clientFin]),
      ),
    );
    const th6 = sha256(ch, sh, sap, sigC, finSC, cap, clientSigC, encodeCbor(clientFin));
    const t = trafficSecrets(th6, s.hs);
    const session = await createSession({
      crypto,
      sendSecret: t.cAp,
      recvSecret: t.sAp,
      sessionHash: th6,
      peerKey: nodeKey,
      limits,
    });
    state = { name: 'done' };
    return { send: [ca], session };
  }

  return {
    start: () =>
      guard.run(async () => {
        if (state.name !== 'start') {
          throw new ScpError('SCP_PROTOCOL', 'start() was already called');
        }
        const eph = await crypto.ephemeral();
        const nonce = crypto.random(NONCE_LENGTH);
        const ch = encodeClientHello({ versions, ephemeral: eph.publicKey, nonce });
        state = { name: 'wait-sh', ch, eph };
        return ch.slice();
      }),
    receive: (f) =>
      guard.run(async () => {
        const st = state;
        if (st.name === 'wait-sh') return onServerHello(f, st);
        if (st.name === 'wait-sa') return onServerAuth(f, st);
        throw new ScpError('SCP_PROTOCOL', `no handshake frame is expected now (${st.name})`);
      }),
  };
}

/** Server handshake: receive(CH) → [SH, SA]; receive(CA) → the session and the client key. */
export function serverHandshake(o: ServerHandshakeOptions): ServerHandshake {
  const limits = resolveLimits(o.limits);
  const { crypto, nodeSigner } = o;
  const serviceKey = publicKeyOf(o.serviceKey, 'serviceKey', 'SCP_HANDSHAKE');
  if (!(o.evidence instanceof Uint8Array) || !(o.endorsement instanceof Uint8Array)) {
    throw new InvalidInputError('serverHandshake needs evidence and endorsement bytes');
  }
  const guard = new Guard();
  /** wait-ch → wait-ca (SH, SA sent; the transcript so far, CH ‖ SH ‖ SAp ‖ cbor(sig_s) ‖
   * cbor(fin_s) as parts, and the handshake secrets) → done. */
  let state:
    | { name: 'wait-ch' }
    | { name: 'wait-ca'; prefix: Uint8Array[]; secrets: HandshakeSecrets }
    | { name: 'done' } = { name: 'wait-ch' };

  async function onClientHello(f: Uint8Array): Promise<{ send: Uint8Array[] }> {
    const hello = decodeClientHello(f);
    const version = [...SUPPORTED].reverse().find((v) => hello.versions.includes(v));
    if (version === undefined) {
      throw new ScpError(
        'SCP_VERSION',
        `no common protocol version: the client offers ${hello.versions.join(', ')}, this node speaks ${SUPPORTED.join(', ')}`,
      );
    }
    const eph = await crypto.ephemeral();
    const sh = encodeServerHello({
      version,
      ephemeral: eph.publicKey,
      nonce: crypto.random(NONCE_LENGTH),
    });
    const z = await shared(eph, hello.ephemeral);
    const ch = f.slice();
    const s = handshakeSecrets(sha256(ch, sh), z);
    const sap = encodeCbor([o.evidence, nodeSigner.publicKey, serviceKey, o.endorsement]);
    const sig = await nodeSigner.sign(concatBytes(SERVER_SIG_CONTEXT, ZERO, sha256(ch, sh, sap)));
    const sigC = encodeCbor(sig);
    const fin = hmacSha256(s.sFin, sha256(ch, sh, sap, sigC));
    const sa = frame(
      FRAME.SA,
      await (await crypto.aeadKey(s.sHsKey)).seal(
        s.sHsIv,
        AAD_SA,
        encodeCbor([o.evidence, nodeSigner.publicKey, serviceKey, o.endorsement, sig, fin]),
      ),
    );
    state = { name: 'wait-ca', prefix: [ch, sh, sap, sigC, encodeCbor(fin)], secrets: s };
    return { send: [sh, sa] };
  }

  async function onClientAuth(
    f: Uint8Array,
    { prefix, secrets: s }: { prefix: Uint8Array[]; secrets: HandshakeSecrets },
  ): Promise<{ send: Uint8Array[]; session: ScpSession; clientKey: Uint8Array }> {
    const body = frameBody(f, FRAME.CA, 'CA', 'SCP_HANDSHAKE');
    const pt = await openHs(crypto, s.cHsKey, s.cHsIv, AAD_CA, body, 'CA');
    const c = 'SCP_HANDSHAKE';
    const [ck, sigV, finV] = arrayOf(cborOf(pt, 'CA', c), 3, 'CA', c);
    const clientKey = publicKeyOf(ck, 'CA client key', c);
    const sig = bytesOf(sigV, SIGNATURE_LENGTH, 'CA signature', c);
    const fin = bytesOf(finV, MAC_LENGTH, 'CA finished', c);
    const cap = encodeCbor([clientKey]);
    const th4 = sha256(...prefix, cap);
    if (!(await crypto.verify(clientKey, concatBytes(CLIENT_SIG_CONTEXT, ZERO, th4), sig))) {
      fail('the client signature over the transcript does not verify');
    }
    const sigC = encodeCbor(sig);
    if (!constantTimeEqual(hmacSha256(s.cFin, sha256(...prefix, cap, sigC)), fin)) {
      fail('the client finished MAC does not verify');
    }
    const th6 = sha256(...prefix, cap, sigC, encodeCbor(fin));
    const t = trafficSecrets(th6, s.hs);
    const session = await createSession({
      crypto,
      sendSecret: t.sAp,
      recvSecret: t.cAp,
      sessionHash: th6,
      peerKey: clientKey,
      limits,
    });
    state = { name: 'done' };
    return { send: [], session, clientKey: clientKey.slice() };
  }

  return {
    receive: (f) =>
      guard.run(async () => {
        const st = state;
        if (st.name === 'wait-ch') return onClientHello(f);
        if (st.name === 'wait-ca') return onClientAuth(f, st);
        throw new ScpError(
          'SCP_PROTOCOL',
          'the handshake is complete: no handshake frame is expected',
        );
      }),
  };
}

export type { ServerAuth };
