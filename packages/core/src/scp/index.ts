/**
 * SCP v1, the secure connection protocol (docs/scp.md). Final public signatures (stable):
 *
 *   SCP_VERSION = 1, SCP_NAME, MAX_FRAME = 1_052_672, REKEY_AFTER = 2^20, SEQ_LIMIT = 2^24,
 *   FRAME {CH:1,SH:2,SA:3,CA:4,RECORD:5,ALERT:6}, MSG {REQUEST:1,RESPONSE:2,NOTIFY:3,KEY_UPDATE:4,CLOSE:5}
 *   class ScpError extends CloisterError { code: ScpErrorCode }
 *   interface AeadKey, ScpCrypto, ScpSigner, ServerAuth, ScpSession (+ readonly closed), ScpMessage
 *   interface ScpLimits { rekeyAfter?; seqLimit? }           (never above the defaults)
 *   clientHandshake({ crypto, identity, authorize, versions?, limits? }): ClientHandshake
 *     .start(): Promise<CH>; .receive(frame): Promise<{ send: Uint8Array[]; session?: ScpSession }>
 *   serverHandshake({ crypto, nodeSigner, serviceKey, evidence, endorsement, limits? }): ServerHandshake
 *     .receive(frame): Promise<{ send; session?; clientKey? }>
 *     On failure both reject with ScpError (or authorize's error); the server's caller sends
 *     encodeAlert(err.code, err.message) and closes. A received ALERT rejects with its code.
 *   webCryptoScp: ScpCrypto; webCryptoSigner(pair: CryptoKeyPair, publicKey65): ScpSigner
 *   verifyServerAuth(a: ServerAuth, { constraint, verifiers? }): Promise<VerifiedEvidence>
 *   encodeAlert(code, message): Uint8Array; decodeAlert(frame): { code, message }
 *   appInfoPayload(sessionHash, app, codeId): Uint8Array; claimsRequest(app, method, args, requestId)
 *   paddedLength(n): number
 *   (constraint.ts) checkServiceClause(c, serviceIdentity); checkAppClause(c, app, codeId)
 */
export { type VerifyServerAuthOptions, verifyServerAuth } from './auth.js';
export { appInfoPayload, claimsRequest, decodeAlert, encodeAlert, paddedLength } from './codec.js';
export { clientHandshake, serverHandshake } from './handshake.js';
export {
  type AeadKey,
  type ClientHandshake,
  type ClientHandshakeOptions,
  FRAME,
  MAX_FRAME,
  MAX_QUEUED_FRAMES,
  MAX_RESULT_BYTES,
  MSG,
  REKEY_AFTER,
  SCP_NAME,
  SCP_VERSION,
  type ScpCrypto,
  ScpError,
  type ScpErrorCode,
  type ScpLimits,
  type ScpMessage,
  type ScpSession,
  type ScpSigner,
  SEQ_LIMIT,
  type ServerAuth,
  type ServerHandshake,
  type ServerHandshakeOptions,
  type SyncAeadKey,
} from './types.js';
export { webCryptoScp, webCryptoSigner } from './webcrypto.js';
