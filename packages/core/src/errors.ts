/**
 * The one registry of error codes shared by the node, the enclave, the client, the CLI and the docs.
 *
 * Every error a user can meet is a `CloisterError` with a stable `code` from `ERROR_CODES` and a
 * `hint` that says what to do. Codes never change meaning once published; add new ones instead.
 * Messages name what went wrong but never carry keys, plaintext app data or client identities.
 */
export const ERROR_CODES = {
  // Encoding and input
  INVALID_INPUT: 'Check the value named in the message and try again.',
  ENCODING: 'The bytes are not in the documented format; see docs/ for the format.',
  // Evidence and constraints (docs/evidence.md, docs/constraints.md)
  EVIDENCE_FORMAT: 'The evidence is malformed; fetch it again from the node.',
  EVIDENCE_VERSION: 'The evidence format version is not supported; upgrade the client.',
  EVIDENCE_SIGNATURE:
    'The evidence signature does not verify: the evidence was altered or forged. Do not trust this node.',
  UNKNOWN_PLATFORM: 'The evidence names a platform this verifier does not know; it is refused.',
  INSECURE_PLATFORM:
    'The node runs on an insecure platform (simulation). Add SEC:INSECURE to the constraint only for development.',
  NONCE_MISMATCH: 'The evidence does not answer your nonce: it may be replayed. Fetch it again.',
  KEY_BINDING:
    'The evidence does not bind the node identity key you were given. Do not trust this node.',
  CONSTRAINT_SYNTAX: 'Fix the constraint clause named in the message; see docs/constraints.md.',
  CONSTRAINT_MISMATCH:
    'The node does not satisfy your constraint. Check the clause named in the message: C: and SVN: against `cloister measure` of the source you reviewed, S: and PROD: against the signer you trust (`cloister build` prints them), SIM: and SVC: against what the operator gave you.',
  // Platform, manifest, sealing
  MANIFEST_INVALID:
    'Rebuild the enclave with `cloister build`; the manifest does not match the bundle.',
  PLATFORM_DIR:
    'Check the platform directory (--platform-dir) exists and is writable by this user.',
  PLATFORM_LOCKED: 'Another process holds the platform directory lock; wait or stop it.',
  PLATFORM_STATE:
    'A platform file is damaged or of an unknown format version: restore the platform directory from backup or upgrade Cloister. Never regenerate it: sealed data depends on it.',
  COUNTER:
    'The platform counter store is damaged or was rolled back; restore the platform directory.',
  COUNTER_IN_USE:
    "Another node on this machine is running the same service: stop it first. Never start a copy of a running node's data directory (it would fork the service); audit a copy with `cloister log audit` instead.",
  SEAL_POLICY: 'The enclave asked for a sealing key it may not have (a higher security version).',
  SEALED_DATA_CORRUPT:
    'A sealed file failed authentication: it is damaged, from another node, or sealed by another platform: check that --platform-dir is the platform directory this data directory was first started with. The node will not create a new identity over it.',
  SECURITY_VERSION_ROLLBACK:
    'This data directory was last run by a higher security version; start that version or newer.',
  // Boundary and node
  BOUNDARY: 'The host/enclave boundary carried a malformed message; this is a bug or an attack.',
  ENCLAVE_FAILED: 'The enclave stopped; see the log line before this one and restart the node.',
  AMBIENT_ACCESS:
    'Enclave code used an ambient global (clock, randomness, process, network, timers).',
  DATA_DIR: 'Check the data directory (--data) exists and is writable by this user.',
  DATA_DIR_LOCKED:
    'Another node is already running on this data directory; stop it or use another --data.',
  PORT_IN_USE: 'Choose another port with --port, or stop the process that uses it.',
  TLS_CONFIG:
    'Give --tls-cert and --tls-key together, as readable PEM files whose key matches the certificate (the message names the file).',
  REQUEST_TOO_LARGE: 'Send a smaller request; the limit is stated in the message.',
  NOT_FOUND: 'Check the URL; see the README for the endpoints.',
  NETWORK: 'Check the node URL and that the node is running.',
  OUTCOME_UNKNOWN:
    'A transaction was sent but its answer was lost (the connection failed, or was refused or closed afterwards): it may have been committed. Look it up with status({ app, requestId }) (the message names both), or retry with the same request id: a transaction is applied at most once per request id.',
  // Ledger (docs/ledger-format.md)
  STORE:
    'The record store failed: the message names the directory and what to do (stop the other process, or free disk space). An older copy of the data directory is no replacement: it is refused as a rollback.',
  LEDGER_INTEGRITY:
    'A stored ledger record failed verification: the data directory was altered, damaged or rolled back. Never ignore this: the node will not serve it, and an older copy is refused too (a rollback); keep it for forensics (docs/logchain.md §7).',
  LEDGER_PROOF:
    'The proof is malformed or internally inconsistent: fetch it again from the node; see docs/ledger-format.md for the format.',
  LEDGER_RESERVED:
    'Reserved tables (names starting with $) are never readable, listable or provable by apps; use another table name.',
  LEDGER_CURSOR:
    'The list cursor is damaged or belongs to another ledger, table or snapshot: start the listing again without a cursor.',
  LEDGER_ACCESS:
    'Proofs are issued only to the app that owns the ledger or to the administrative role.',
  LEDGER_INDEX:
    'No committed state has this index: ask for an index between 0 and the latest commit.',
  LEDGER_STATE:
    'The ledger engine stopped after a failed store write; reopen it from its root record.',
  TX_TOO_LARGE:
    'The transaction exceeds the cap named in the message (keys, bytes, key size or value size, or the store batch its commit would make): split it.',
  TX_CONFLICT:
    'Another transaction changed what this one read since it began: run the transaction again.',
  TX_CLOSED: 'The transaction was already committed or aborted: begin a new one.',
  // Logchain and receipts (docs/receipts.md)
  LOG_FORMAT:
    'A log entry, receipt or signed structure is not in the documented format; see docs/receipts.md.',
  LOG_PROOF:
    'The Merkle inclusion or consistency proof does not verify: fetch it again from the node; if it still fails, do not trust the node.',
  RECEIPT:
    'The receipt does not verify for the reason named in the message: it was altered, forged, or is for another service. Do not rely on it.',
  RECEIPT_NOT_READY:
    'The transaction is committed but no signature covers it yet: ask for its receipt again after the next signature (a second or so at the default --sign-interval; a node started with --sign-interval 0 signs every 1000 entries).',
  UNKNOWN_TRANSACTION:
    'No entry of this log has that transaction id: check the id (term.index) and that you asked the right service.',
  ROLLBACK_DETECTED:
    'The service showed an older or forked log than one you already saw: it was rolled back or forked. Do not trust it. If you use the service, report this to its operator; if you run it, its data directory was rolled back or replaced (an older copy started), or a copy of it runs elsewhere: find which before serving again.',
  LOG_ENTRY_MISSING:
    "A log entry is missing at the index named in the message: the log was damaged or cut. If you audit a copy, report it to the service's operator; if you run the node, it will not serve this data directory, and an older copy is refused too (a rollback): keep it for forensics (docs/logchain.md §7).",
  LOG_ENTRY_ALTERED:
    "The log entry at the index named in the message was altered or damaged (hash chain or tree mismatch). If you audit a copy, report it to the service's operator; if you run the node, it will not serve this data directory, and an older copy is refused too (a rollback): keep it for forensics (docs/logchain.md §7).",
  LOG_ENTRY_REORDERED:
    "A log entry sits at the wrong position (index named in the message): the log was reordered. If you audit a copy, report it to the service's operator; if you run the node, it will not serve this data directory, and an older copy is refused too (a rollback): keep it for forensics (docs/logchain.md §7).",
  LOG_TAIL_CUT:
    'The log ends before the size a trusted checkpoint or root covers: its tail was cut. If you use the service, do not trust it and report this to its operator; if you run it, its data directory was rolled back, replaced or cut: the node will not serve it, and an older copy is refused too; keep it for forensics (docs/logchain.md §7).',
  LOG_SIGNATURE:
    "The signature entry at the index named in the message does not verify or signs a root or state that is not the log's. Do not trust this log.",
  STORE_FORMAT:
    'The data directory was written in a store format this build does not know (named in the message): run the Cloister version that wrote it, or upgrade.',
  // App sandbox (docs/sandbox.md)
  APP_MODULE_MALFORMED:
    'The app module is not valid WebAssembly: rebuild it; the message names the section and byte offset.',
  APP_MODULE_FEATURE:
    'The app module uses a WebAssembly feature the sandbox refuses (named in the message): build without it; see docs/sandbox.md.',
  APP_IMPORT_UNKNOWN:
    'The app module imports something the sandbox does not provide (module and field named in the message): remove the import or use the documented ABI.',
  APP_MODULE_LIMIT:
    'The app module exceeds a deploy-time cap or breaks a deploy-time rule named in the message (size, memory or table maximum, locals, an export named cloister:…): lower it or rename the export; see docs/sandbox.md.',
  APP_FUEL_EXHAUSTED:
    'The app call ran out of fuel: it does too much work for one call (or loops forever); split the work or raise the fuel limit.',
  APP_STACK_DEPTH: 'The app call nested too deeply (recursion): make it iterative or shallower.',
  APP_TRAP:
    'The app trapped (kind named in the message): this is a bug in the app; its transaction left no write.',
  APP_RESULT_TOO_LARGE: 'The app returned more bytes than the result cap: return less.',
  APP_INSTANCE_POISONED:
    'A sandbox instance is never reused after a failed call: instantiate the module again.',
  // App ABI and runtime (docs/app-abi.md)
  APP_ABI_VERSION:
    'The app module does not declare an ABI version this node supports (named in the message): rebuild it with a matching SDK; see docs/app-abi.md.',
  APP_ABI:
    'The app broke a rule of the app ABI named in the message (bad text, a cap, a call out of place): fix the app; see docs/app-abi.md.',
  APP_QUERY_WRITE:
    'A query tried to write (ledger_set, ledger_remove or key_create): queries only read; make the method a transaction.',
  APP_ERROR:
    'The app refused the call with its own error code and message: see the app documentation for that code.',
  APP_ABORT:
    'The app aborted (an AssemblyScript assertion or runtime check failed): this is a bug in the app; its transaction left no write.',
  APP_NOT_FOUND: 'No app of that id is deployed on this node: check the app id.',
  APP_METHOD_UNKNOWN:
    'The app has no method of that name: check the method name against the methods it registers (the message lists them, as does the manifest of an app built with the SDK).',
  APP_METHOD_KIND:
    'The method is a query and was called as a transaction, or the reverse: call it as the app registers it (a query with query() or `cloister query`, a transaction with transact() or `cloister call`).',
  APP_RESULT_INVALID:
    'The app returned a result or notification that is not valid JSON text, or nests arrays and objects deeper than the cap (maxJsonDepth, 64 levels by default): this is a bug in the app.',
  REQUEST_ID_REUSED:
    'The request id was already used by you for another call (another method or other arguments: the argument text as sent, which the SDK and the CLI write as JSON.stringify does, so key order counts and whitespace does not): the message names the transaction of that call. Use a new request id for a new call; reuse one only to retry the very same call.',
  // Deploy and upgrade (docs/node-api.md, "Apps")
  OPERATOR_KEY_MISMATCH:
    'The node was started with another operator key than the one its administrative ledger records: start it with the recorded key (<home>/operator.pem). Changing it is governance.',
  OPERATOR_KEY_MISSING:
    'No operator key is recorded on this node: start it with `cloister node start` (which passes <home>/operator.pem), then deploy again.',
  APP_DEPLOY_SIGNATURE:
    "The deploy request is not signed by this node's operator key: sign it with the operator key the node records (<home>/operator.pem of the node's operator).",
  APP_DEPLOY_STALE:
    'The deploy request does not match the app as it is now (replayed, stale, another service, or --upgrade missing/extra): build a fresh request with `cloister app deploy`.',
  APP_DEPLOY_CODE_MISMATCH:
    'The module bytes do not have the code id the request signs: send the module the request was made for.',
  // Secure connection protocol (docs/scp.md)
  SCP_HANDSHAKE:
    'The secure connection handshake failed (the message says which check): the connection was altered, or the peer is not who it claims. Reconnect; if it persists, do not trust this node or network path.',
  SCP_VERSION:
    'Client and node share no secure connection protocol version: upgrade the older side (versions are named in the message).',
  SCP_RECORD:
    'A secure connection record failed authentication (altered, dropped, reordered, replayed, reflected or truncated): the session is closed. Reconnect; if it persists, the network path is hostile.',
  SCP_SEQUENCE:
    'A secure connection exceeded its record sequence limit without rekeying: the session is closed; reconnect.',
  SCP_PROTOCOL:
    'The peer sent a well-authenticated but malformed or unexpected secure connection message: this is a bug in the peer; the session is closed. Reconnect, and report it if it persists.',
  SCP_CLOSED: 'The secure connection session is closed: open a new connection.',
  SCP_SESSIONS:
    'The node has too many open secure connection sessions: retry later, or ask the operator to raise the cap.',
  NODE_BUSY:
    'The node is already taking as many such requests as it takes at once: retry in a moment.',
  FRAME_TOO_LARGE:
    'A secure connection frame exceeds the size limit stated in the message: send smaller requests.',
  SERVICE_CHANGED:
    'The service identity differs from the one pinned for this URL: the service was replaced or this is an attack. Do not proceed; check the identity in the message with the operator, then re-pin that one deliberately (`--accept-service <hex>`, `acceptServiceChange`, or the accept button in the console).',
  CLIENT_STATE_LOCKED:
    'Another process or tab is using the client state (pins and signed roots): it held the lock for longer than the wait stated in the message, took it over while this one was blocked, or wrote what this one was about to change (nothing was written). Retry; if it persists, find that process. A lock left by a process that died is taken over after 5 s.',
  APP_CODE_MISMATCH:
    'The app code id is not one the constraint admits (APP: clause named in the message): check the app version, then update the constraint only if you trust the new code.',
  APP_CODE_CHANGED:
    'The app code changed since you checked it: read app.info again, check the new code id against your constraint, then retry.',
  // Not thrown as such: the code a tool reports, in machine-readable output, for a failure that
  // is not a CloisterError (a bug, or an error from below it), so every error has a registry code.
  UNEXPECTED:
    'This was not expected: run the command again with --log-level debug where it has one, and report the message if it repeats.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error Cloister raises on purpose. */
export class CloisterError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;

  /**
   * `options.hint` replaces the registry's next step where the raiser knows a more exact one (the
   * code's meaning is unchanged): "run `cloister build`" rather than the manifest code's "rebuild
   * or re-sign" for a build that does not exist.
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint ?? ERROR_CODES[code];
  }
}

/** True when `e` is a CloisterError carrying `code`. */
export function isCloisterError(e: unknown, code?: ErrorCode): e is CloisterError {
  return e instanceof CloisterError && (code === undefined || e.code === code);
}

export class InvalidInputError extends CloisterError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

export class EncodingError extends CloisterError {
  constructor(message: string) {
    super('ENCODING', message);
  }
}
