/**
 * @cloister/client: connect to a Cloister node over the secure connection protocol
 * (docs/scp.md), verify what runs there — the enclave, the service, each app's code — before any
 * data leaves, call apps, and verify receipts. Isomorphic: this entry imports no Node built-in and
 * takes its transport as a port; "./node" and "./browser" wire in theirs and their storage.
 */
export {
  type Claims,
  CloisterError,
  type Constraint,
  ERROR_CODES,
  type ErrorCode,
  fromHex,
  isCloisterError,
  parseConstraint,
  ReceiptError,
  RollbackDetectedError,
  type SignedRoot,
  type SignedRootStore,
  toHex,
  type VerifiedReceipt,
  verifyInclusion,
  verifyNonInclusion,
  verifyReceipt,
  verifyStateProof,
} from '@cloister/core';
export type {
  AppClient,
  AppInfo,
  CallOptions,
  QueryResult,
  TransactOptions,
  TransactResult,
} from './app.js';
export {
  type Client,
  type ConnectOptions,
  connect,
  type PinInfo,
  type ReceiptOptions,
  type ReceiptResult,
  type ServiceInfo,
  type Status,
  type StatusQuery,
  scpUrl,
} from './client.js';
export type { ReconnectOptions } from './connection.js';
export {
  AppCallError,
  ClientClosedError,
  HandshakeRefusedError,
  NetworkError,
  NodeError,
  OutcomeUnknownError,
  RepeatedRequestCodeError,
  ServiceChangedError,
  StateLockedError,
  UnexpectedServiceError,
} from './errors.js';
export { generateIdentity, identityOf } from './identity.js';
export {
  type ClientState,
  type Identity,
  memoryPinStore,
  memoryState,
  type PinStore,
  type Socket,
  type Transport,
} from './ports.js';
