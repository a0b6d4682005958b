/**
 * Test kit for SCP: a node world (node key, service key, simulation evidence, endorsement),
 * deterministic crypto for the fixed vectors (ephemeral keys from fixed scalars, imported into
 * WebCrypto; fixed randomness; RFC 6979 signatures from @noble/curves), and an in-memory relay
 * that runs a handshake and lets a test alter any frame on the way.
 */
import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { toHex, utf8 } from '../src/bytes.js';
import { encodeCbor } from '../src/cbor.js';
import { computeMeasurement, computeReportData, type EvidenceClaims } from '../src/evidence.js';
import { sha256 } from '../src/hash.js';
import { endorsementNonce, endorsementPayload } from '../src/log/payloads.js';
import {
  type ClientHandshake,
  clientHandshake,
  encodeAlert,
  type ScpCrypto,
  ScpError,
  type ScpLimits,
  type ScpSession,
  type ScpSigner,
  type ServerAuth,
  type ServerHandshake,
  serverHandshake,
  verifyServerAuth,
  webCryptoScp,
} from '../src/scp/index.js';
import { payloadMap } from './helpers.js';
import { type P256Key, sign1 } from './log-kit.js';

/**
 * `c` with aeadKeySync over node:crypto: sessions made with it run the synchronous record layer
 * (ScpSession.sealSync / openSync), which must be byte-for-byte the asynchronous one. With
 * `prefixed`, its keys also offer sealPrefixed (records sealed after their type byte).
 */
export function withSyncAead(c: ScpCrypto, o: { prefixed?: boolean } = {}): ScpCrypto {
  return {
    ...c,
    aeadKeySync: (raw32) => {
      if (raw32.length !== 32) throw new Error('an AES-256-GCM key is 32 bytes');
      const key = createSecretKey(Buffer.from(raw32));
      const seal = (
        iv: Uint8Array,
        aad: Uint8Array,
        pt: Uint8Array,
        prefix: Uint8Array = new Uint8Array(0),
      ): Uint8Array => {
        const x = createCipheriv('aes-256-gcm', key, iv);
        x.setAAD(aad);
        return new Uint8Array(Buffer.concat([prefix, x.update(pt), x.final(), x.getAuthTag()]));
      };
      return {
        ...(o.prefixed === true
          ? {
              sealPrefixed: (prefix: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array) =>
                seal(iv, aad, pt, prefix),
            }
          : {}),
        seal: (iv, aad, pt) => seal(iv, aad, pt),
        open: (iv, aad, ct) => {
          if (ct.length < 16) throw new Error('shorter than the tag');
          const d = createDecipheriv('aes-256-gcm', key, iv);
          d.setAAD(aad);
          d.setAuthTag(ct.subarray(ct.length - 16));
          return new Uint8Array(
            Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]),
          );
        },
      };
    },
  };
}

/** A fixed P-256 secret: SHA-256("scp test scalar <n>") (below the group order for these n). */
export function fixedKey(n: number): P256Key {
  const secret = sha256(utf8(`scp test scalar ${n}`));
  return { secret, publicKey: p256.getPublicKey(secret, false) };
}

export function randomKey(): P256Key {
  const secret = p256.utils.randomSecretKey();
  return { secret, publicKey: p256.getPublicKey(secret, false) };
}

/** A deterministic signer (RFC 6979), so signatures in the vectors are fixed. */
export function nobleSigner(key: P256Key): ScpSigner {
  return {
    publicKey: key.publicKey,
    sign: async (data) => p256.sign(data, key.secret),
  };
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/**
 * webCryptoScp with injected randomness: ephemeral() hands out `ephemerals` in order (imported
 * into WebCrypto from their fixed scalars, so ECDH still runs in WebCrypto), random() hands out
 * `randoms` in order. AEAD and verify are webCryptoScp's.
 */
export function fixedCrypto(ephemerals: P256Key[], randoms: Uint8Array[]): ScpCrypto {
  const eph = [...ephemerals];
  const rnd = [...randoms];
  return {
    aeadKey: webCryptoScp.aeadKey,
    verify: webCryptoScp.verify,
    random(n) {
      const r = rnd.shift();
      if (r === undefined || r.length !== n)
        throw new Error('fixedCrypto: no fixed random of that size left');
      return r.slice();
    },
    async ephemeral() {
      const k = eph.shift();
      if (k === undefined) throw new Error('fixedCrypto: no fixed ephemeral key left');
      const pub = k.publicKey;
      const jwk = {
        kty: 'EC',
        crv: 'P-256',
        x: b64u(pub.subarray(1, 33)),
        y: b64u(pub.subarray(33)),
        d: b64u(k.secret),
      };
      const alg = { name: 'ECDH', namedCurve: 'P-256' };
      const priv = await crypto.subtle.importKey('jwk', jwk, alg, false, ['deriveBits']);
      return {
        publicKey: pub.slice(),
        async deriveShared(peer) {
          const p = await crypto.subtle.importKey('raw', new Uint8Array(peer), alg, false, []);
          return new Uint8Array(
            await crypto.subtle.deriveBits({ name: 'ECDH', public: p }, priv, 256),
          );
        },
      };
    },
  };
}

const MEASUREMENT = computeMeasurement(sha256(utf8('app bundle')), 7, 3);

/** A node: its keys, evidence binding the node key for the service, and the endorsement. */
export interface World {
  readonly node: P256Key;
  readonly service: P256Key;
  readonly platform: P256Key;
  readonly evidence: Uint8Array;
  readonly endorsement: Uint8Array;
  /** Satisfied by the evidence (simulation admitted). */
  readonly constraint: string;
}

/** Deterministic with fixed keys (noble signatures are RFC 6979). */
export function makeWorld(
  keys: { node?: P256Key; service?: P256Key; platform?: P256Key } = {},
  nonceFor?: Uint8Array,
): World {
  const node = keys.node ?? randomKey();
  const service = keys.service ?? randomKey();
  const platform = keys.platform ?? randomKey();
  const claims: EvidenceClaims = {
    v: 1,
    platform: 'simulation',
    measurement: MEASUREMENT,
    signer: sha256(utf8('signer key')),
    product: 7,
    svn: 3,
    reportData: computeReportData(node.publicKey, nonceFor ?? endorsementNonce(service.publicKey)),
    platformKey: platform.publicKey,
  };
  return {
    node,
    service,
    platform,
    evidence: sign1(platform, encodeCbor(payloadMap({ ...claims }))),
    endorsement: sign1(node, endorsementPayload(service.publicKey, node.publicKey)),
    constraint: `C:${toHex(MEASUREMENT)} SEC:INSECURE`,
  };
}

export type Which = 'CH' | 'SH' | 'SA' | 'CA';

export interface RunResult {
  readonly frames: Partial<Record<Which, Uint8Array>>;
  clientError?: unknown;
  serverError?: unknown;
  clientSession?: ScpSession;
  serverSession?: ScpSession;
  clientKey?: Uint8Array;
  auth?: ServerAuth;
}

export interface RunOptions {
  readonly world?: World;
  readonly client?: ClientHandshake;
  readonly server?: ServerHandshake;
  readonly clientCrypto?: ScpCrypto;
  readonly serverCrypto?: ScpCrypto;
  readonly identity?: ScpSigner;
  readonly versions?: readonly number[];
  readonly clientLimits?: ScpLimits;
  readonly serverLimits?: ScpLimits;
  /** Default: verifyServerAuth with the world's constraint. */
  readonly authorize?: (a: ServerAuth) => Promise<void>;
  /** The hostile relay: sees each frame (original bytes) and returns what it delivers. */
  readonly tamper?: (which: Which, frame: Uint8Array) => Uint8Array;
}

/** Runs one handshake through the relay; records errors instead of throwing. */
export async function runHandshake(o: RunOptions = {}): Promise<RunResult> {
  const world = o.world ?? makeWorld();
  const tamper = o.tamper ?? ((_w, f) => f);
  const r: RunResult = { frames: {} };
  const client =
    o.client ??
    clientHandshake({
      crypto: o.clientCrypto ?? webCryptoScp,
      identity: o.identity ?? nobleSigner(randomKey()),
      authorize:
        o.authorize ??
        (async (a) => {
          r.auth = a;
          await verifyServerAuth(a, { constraint: world.constraint });
        }),
      ...(o.versions === undefined ? {} : { versions: o.versions }),
      ...(o.clientLimits === undefined ? {} : { limits: o.clientLimits }),
    });
  const server =
    o.server ??
    serverHandshake({
      crypto: o.serverCrypto ?? webCryptoScp,
      nodeSigner: nobleSigner(world.node),
      serviceKey: world.service.publicKey,
      evidence: world.evidence,
      endorsement: world.endorsement,
      ...(o.serverLimits === undefined ? {} : { limits: o.serverLimits }),
    });
  const ch = await client.start();
  r.frames.CH = ch;
  let toClient: Uint8Array[];
  try {
    toClient = (await server.receive(tamper('CH', ch))).send;
  } catch (e) {
    r.serverError = e;
    // The server's caller answers a handshake failure with an ALERT.
    const code = e instanceof ScpError ? e.code : 'SCP_HANDSHAKE';
    try {
      await client.receive(encodeAlert(code, e instanceof Error ? e.message : String(e)));
    } catch (ce) {
      r.clientError = ce;
    }
    return r;
  }
  const [sh, sa] = toClient as [Uint8Array, Uint8Array];
  r.frames.SH = sh;
  r.frames.SA = sa;
  let ca: Uint8Array;
  try {
    const a = await client.receive(tamper('SH', sh));
    if (a.send.length !== 0 || a.session !== undefined) throw new Error('SH must yield nothing');
    const b = await client.receive(tamper('SA', sa));
    ca = b.send[0] as Uint8Array;
    r.clientSession = b.session;
  } catch (e) {
    r.clientError = e;
    return r;
  }
  r.frames.CA = ca;
  try {
    const c = await server.receive(tamper('CA', ca));
    r.serverSession = c.session;
    r.clientKey = c.clientKey;
  } catch (e) {
    r.serverError = e;
  }
  return r;
}

/** Both sessions of an honest handshake. */
export async function connected(o: RunOptions = {}): Promise<{
  client: ScpSession;
  server: ScpSession;
  clientKey: Uint8Array;
  frames: RunResult['frames'];
}> {
  const r = await runHandshake(o);
  if (r.clientSession === undefined || r.serverSession === undefined || r.clientKey === undefined) {
    throw new Error(`handshake failed: ${String(r.clientError ?? r.serverError)}`);
  }
  return {
    client: r.clientSession,
    server: r.serverSession,
    clientKey: r.clientKey,
    frames: r.frames,
  };
}
