/**
 * Constraints: the small text syntax that says which enclaves a client accepts
 * (docs/constraints.md). Parsing is table-driven: each clause kind is one row of CLAUSE_KINDS.
 * APP: and SVC: are not evidence facts: matchConstraint ignores them, the secure connection
 * protocol checks them (checkAppClause, checkServiceClause).
 */
import {
  ConstraintMismatchError,
  ConstraintSyntaxError,
  InsecurePlatformError,
} from './attestation-errors.js';
import { bytesEqual, constantTimeEqual, fromHex, toHex } from './bytes.js';
import { CloisterError } from './errors.js';
import { sha256 } from './hash.js';

/** Longest constraint text accepted, in characters. */
export const MAX_CONSTRAINT_LENGTH = 8192;

/**
 * A parsed constraint. Build one with parseConstraint; verifyEvidence re-validates any object it
 * is handed. All byte arrays are 32 bytes. Semantics, in the order matchConstraint checks them:
 * the platform must be secure unless `allowInsecure`; the measurement must be one of
 * `measurements` (when any); the signer must equal `signer` and the product `product` (both or
 * neither); the security version must be >= `minSvn`; an insecure platform's key hash must be one
 * of `simulationKeys` (when any). At least one of `measurements` or `signer` is present.
 */
export interface Constraint {
  /** C: clauses: accepted measurements; any one matching suffices. */
  readonly measurements: readonly Uint8Array[];
  /** S: the manifest signer (SHA-256 of the signer's 65-byte public key). */
  readonly signer?: Uint8Array;
  /** PROD: the product id; present exactly when `signer` is. */
  readonly product?: number;
  /** SVN: the minimum security version. */
  readonly minSvn?: number;
  /** SEC:INSECURE: insecure platforms (simulation) are admitted. */
  readonly allowInsecure: boolean;
  /** SIM: clauses: SHA-256 of admitted insecure platform keys; any one matching suffices. */
  readonly simulationKeys: readonly Uint8Array[];
  /** APP: clauses: app name → admitted code ids (any one suffices); apps not named are unchecked.
   * Absent in hand-built constraints means none. */
  readonly apps?: ReadonlyMap<string, readonly Uint8Array[]>;
  /** SVC: the service identity (SHA-256 of the service key) the client accepts. */
  readonly service?: Uint8Array;
}

/** What the evidence showed, after verification, that a constraint is matched against. */
export interface ConstraintFacts {
  readonly secure: boolean;
  readonly measurement: Uint8Array;
  readonly signer: Uint8Array;
  readonly product: number;
  readonly svn: number;
  /** The 65-byte platform key; SIM: compares its SHA-256. */
  readonly platformKey: Uint8Array;
}

type Kind = 'C' | 'S' | 'PROD' | 'SVN' | 'SEC' | 'SIM' | 'APP' | 'SVC';

interface ClauseKind {
  /** What a well-formed clause of this kind looks like, for error messages. */
  readonly expected: string;
  /** Whether the kind may appear several times (with distinct values). */
  readonly multi: boolean;
  /** The parsed value, or undefined when the value is malformed. */
  parse(value: string): ClauseValue | undefined;
}

/** An APP: clause's value. */
interface AppCode {
  readonly app: string;
  readonly codeId: Uint8Array;
}

type ClauseValue = Uint8Array | number | true | AppCode;

const HEX32 = /^[0-9a-fA-F]{64}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,9})$/;

function hex32(value: string): Uint8Array | undefined {
  return HEX32.test(value) ? fromHex(value) : undefined;
}

function u32(value: string): number | undefined {
  if (!DECIMAL.test(value)) return undefined;
  const n = Number(value);
  return n < 2 ** 32 ? n : undefined;
}

/** App names as the node accepts them (1..64 of [A-Za-z0-9_.-], starting with a letter or digit). */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** True for an app id the node accepts (what `APP:` clauses, deploys and `/v1/apps/<id>` name). */
export function isAppId(name: unknown): name is string {
  return typeof name === 'string' && APP_NAME.test(name);
}

function appCode(value: string): AppCode | undefined {
  const eq = value.indexOf('=');
  if (eq < 0) return undefined;
  const app = value.slice(0, eq);
  const codeId = hex32(value.slice(eq + 1));
  return APP_NAME.test(app) && codeId !== undefined ? { app, codeId } : undefined;
}

const CLAUSE_KINDS: Readonly<Record<Kind, ClauseKind>> = {
  C: { expected: 'C:<64 hex digits> (an accepted measurement)', multi: true, parse: hex32 },
  S: { expected: 'S:<64 hex digits> (the signer)', multi: false, parse: hex32 },
  PROD: { expected: 'PROD:<decimal 0..4294967295>', multi: false, parse: u32 },
  SVN: { expected: 'SVN:<decimal 0..4294967295> (minimum)', multi: false, parse: u32 },
  SEC: {
    expected: 'SEC:INSECURE',
    multi: false,
    parse: (v) => (v === 'INSECURE' ? true : undefined),
  },
  SIM: { expected: 'SIM:<64 hex digits> (platform key hash)', multi: true, parse: hex32 },
  APP: {
    expected: 'APP:<app name>=<64 hex digits> (an accepted code id of that app)',
    multi: true,
    parse: appCode,
  },
  SVC: { expected: 'SVC:<64 hex digits> (the service identity)', multi: false, parse: hex32 },
};

const KNOWN = 'C:, S:, PROD:, SVN:, SEC:, SIM:, APP:, SVC:';

function shown(clause: string): string {
  return JSON.stringify(clause.length > 80 ? `${clause.slice(0, 77)}...` : clause);
}

interface SeenClause {
  readonly value: ClauseValue;
  readonly clause: string;
  readonly position: number;
}

type Seen = Map<Kind, SeenClause[]>;

function syntax(clause: string, position: number, what: string): ConstraintSyntaxError {
  return new ConstraintSyntaxError(
    `constraint clause ${position} ${shown(clause)}: ${what}`,
    clause,
    position,
  );
}

function sameValue(a: SeenClause['value'], b: SeenClause['value']): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return bytesEqual(a, b);
  if (typeof a === 'object' && typeof b === 'object' && 'app' in a && 'app' in b) {
    return a.app === b.app && bytesEqual(a.codeId, b.codeId);
  }
  return a === b;
}

function parseClause(clause: string, position: number, seen: Seen): void {
  const colon = clause.indexOf(':');
  const name = colon < 0 ? '' : clause.slice(0, colon);
  if (colon < 0 || !Object.hasOwn(CLAUSE_KINDS, name)) {
    throw syntax(clause, position, `unknown clause; expected one of ${KNOWN}`);
  }
  const kind = CLAUSE_KINDS[name as Kind];
  const value = kind.parse(clause.slice(colon + 1));
  if (value === undefined) throw syntax(clause, position, `expected ${kind.expected}`);
  const list = seen.get(name as Kind) ?? [];
  if (list.length > 0 && !kind.multi) {
    throw syntax(clause, position, `only one ${name}: clause is allowed`);
  }
  if (list.some((s) => sameValue(s.value, value))) {
    throw syntax(clause, position, `the same ${name}: value is given twice`);
  }
  list.push({ value, clause, position });
  seen.set(name as Kind, list);
}

function first(seen: Seen, kind: Kind): SeenClause | undefined {
  return seen.get(kind)?.[0];
}

/** Rules between clauses: S: with PROD:, SIM: only with SEC:INSECURE, a code identity. */
function checkCombination(seen: Seen): void {
  const s = first(seen, 'S');
  const prod = first(seen, 'PROD');
  if (s !== undefined && prod === undefined) {
    throw syntax(
      s.clause,
      s.position,
      'S: needs a PROD:<product> clause too (a signer signs many products)',
    );
  }
  if (prod !== undefined && s === undefined) {
    throw syntax(prod.clause, prod.position, 'PROD: is only meaningful with an S:<signer> clause');
  }
  const sim = first(seen, 'SIM');
  if (sim !== undefined && !seen.has('SEC')) {
    throw syntax(
      sim.clause,
      sim.position,
      'SIM: pins an insecure platform, so it needs SEC:INSECURE',
    );
  }
  if (!seen.has('C') && s === undefined) {
    throw new ConstraintSyntaxError(
      'a constraint must name a code identity: ' +
        'at least one C:<measurement>, or S:<signer> with PROD:<product>',
    );
  }
}

/**
 * Parses a constraint: clauses separated by ASCII whitespace, each `KIND:VALUE`
 * (docs/constraints.md has the grammar). Throws ConstraintSyntaxError naming the first bad
 * clause, its 1-based position and what was expected, or saying that no code identity is named.
 */
export function parseConstraint(text: string): Constraint {
  if (typeof text !== 'string') throw new ConstraintSyntaxError('a constraint must be text');
  if (text.length > MAX_CONSTRAINT_LENGTH) {
    throw new ConstraintSyntaxError(`a constraint is at most ${MAX_CONSTRAINT_LENGTH} characters`);
  }
  const clauses = text.split(/[ \t\r\n]+/).filter((c) => c !== '');
  const seen: Seen = new Map();
  for (const [i, clause] of clauses.entries()) parseClause(clause, i + 1, seen);
  checkCombination(seen);
  // Multi-valued clauses are kept sorted (by hex), so equal constraints are equal objects.
  const bytes = (k: Kind): Uint8Array[] =>
    sortBytes((seen.get(k) ?? []).map((s) => s.value as Uint8Array));
  const signer = first(seen, 'S')?.value;
  const product = first(seen, 'PROD')?.value;
  const minSvn = first(seen, 'SVN')?.value;
  const service = first(seen, 'SVC')?.value;
  const apps = new Map<string, Uint8Array[]>();
  for (const { value } of seen.get('APP') ?? []) {
    const { app, codeId } = value as AppCode;
    apps.set(app, [...(apps.get(app) ?? []), codeId]);
  }
  const sortedApps = new FrozenMap(
    [...apps.keys()].sort().map((a) => [a, Object.freeze(sortBytes(apps.get(a) ?? []))] as const),
  );
  const c: Constraint = {
    measurements: Object.freeze(bytes('C')),
    allowInsecure: seen.has('SEC'),
    simulationKeys: Object.freeze(bytes('SIM')),
    ...(signer instanceof Uint8Array && typeof product === 'number' ? { signer, product } : {}),
    ...(typeof minSvn === 'number' ? { minSvn } : {}),
    apps: sortedApps,
    ...(service instanceof Uint8Array ? { service } : {}),
  };
  Object.freeze(c);
  PARSED.add(c);
  return c;
}

/**
 * A Map that refuses changes once built: a parsed constraint is frozen, and Object.freeze does
 * not stop Map.set, which would let code holding the constraint admit another app code id.
 */
class FrozenMap<K, V> extends Map<K, V> {
  #built = false;

  constructor(entries: Iterable<readonly [K, V]>) {
    // Not super(entries): Map's constructor calls this.set before this class's fields exist.
    super();
    for (const [k, v] of entries) super.set(k, v);
    this.#built = true;
  }

  override set(key: K, value: V): this {
    if (this.#built) throw new TypeError('a parsed constraint is read-only: parse another');
    return super.set(key, value);
  }

  override delete(): boolean {
    throw new TypeError('a parsed constraint is read-only: parse another');
  }

  override clear(): void {
    throw new TypeError('a parsed constraint is read-only: parse another');
  }
}

function sortBytes(list: Uint8Array[]): Uint8Array[] {
  return list.sort((a, b) => (toHex(a) < toHex(b) ? -1 : 1));
}

/** Constraints made by parseConstraint (frozen, so still valid): verifiers need not re-check them. */
const PARSED = new WeakSet<Constraint>();

/** True when `c` came from parseConstraint. */
export function isParsedConstraint(c: Constraint): boolean {
  return PARSED.has(c);
}

function sortedHex(list: readonly Uint8Array[]): string[] {
  return list.map((b) => toHex(b)).sort();
}

/** sortedHex of a hand-built field, refused (ConstraintSyntaxError) when it has another shape. */
function checkedHex(list: unknown, what: string): string[] {
  if (!Array.isArray(list) || !list.every((b) => b instanceof Uint8Array)) {
    throw new ConstraintSyntaxError(`constraint ${what} must be an array of byte strings`);
  }
  return sortedHex(list);
}

/**
 * The canonical text of a constraint: C: (sorted), S:, PROD:, SVN:, SEC:INSECURE, SIM: (sorted),
 * APP: (sorted by name, then code id), SVC:, lowercase hex, single spaces. parseConstraint(formatConstraint(c)) equals c. Throws
 * ConstraintSyntaxError when `c` is not a valid constraint.
 */
export function formatConstraint(c: Constraint): string {
  const parts: string[] = [];
  const hex = (b: unknown): string => (b instanceof Uint8Array ? toHex(b) : String(b));
  for (const m of checkedHex(c.measurements ?? [], 'measurements')) parts.push(`C:${m}`);
  if (c.signer !== undefined) parts.push(`S:${hex(c.signer)}`);
  if (c.product !== undefined) parts.push(`PROD:${c.product}`);
  if (c.minSvn !== undefined) parts.push(`SVN:${c.minSvn}`);
  if (c.allowInsecure === true) parts.push('SEC:INSECURE');
  for (const k of checkedHex(c.simulationKeys ?? [], 'simulationKeys')) parts.push(`SIM:${k}`);
  if (c.apps !== undefined && !(c.apps instanceof Map)) {
    throw new ConstraintSyntaxError('constraint apps must be a Map of app name to code ids');
  }
  for (const app of [...(c.apps?.keys() ?? [])].sort()) {
    for (const id of checkedHex(c.apps?.get(app), `apps '${String(app)}'`)) {
      parts.push(`APP:${app}=${id}`);
    }
  }
  if (c.service !== undefined) parts.push(`SVC:${hex(c.service)}`);
  const text = parts.join(' ');
  parseConstraint(text); // validates: same rules as parsing
  return text;
}

/**
 * The clauses of `c` that evidence cannot show, canonical, in formatConstraint's order: each APP:
 * (a code id comes from the node's signed app.info over SCP), then SVC: unless the caller checked
 * it itself (`serviceChecked`: against a receipt's or a log's service key). What a tool that
 * checks less than a client names as not checked.
 */
export function clausesBeyondEvidence(
  c: Constraint,
  o: { readonly serviceChecked: boolean },
): string[] {
  const out: string[] = [];
  for (const app of [...(c.apps?.keys() ?? [])].sort()) {
    for (const id of sortedHex(c.apps?.get(app) ?? [])) out.push(`APP:${app}=${id}`);
  }
  if (!o.serviceChecked && c.service !== undefined) out.push(`SVC:${toHex(c.service)}`);
  return out;
}

function includes(list: readonly Uint8Array[], b: Uint8Array): boolean {
  return list.some((x) => bytesEqual(x, b));
}

/**
 * Checks verified facts against a constraint, in the documented order (SEC, C, S, PROD, SVN,
 * SIM). Returns nothing when every clause holds; otherwise throws InsecurePlatformError (insecure
 * platform, no SEC:INSECURE) or ConstraintMismatchError naming the failing clause and the value
 * seen. SIM: applies only to insecure platforms.
 */
export function matchConstraint(constraint: Constraint, facts: ConstraintFacts): void {
  const c = constraint;
  if (!facts.secure && !c.allowInsecure) {
    throw new InsecurePlatformError(
      'the platform is insecure and the constraint does not admit insecure platforms ' +
        '(SEC:INSECURE)',
    );
  }
  if (c.measurements.length > 0 && !includes(c.measurements, facts.measurement)) {
    const clause = sortedHex(c.measurements)
      .map((h) => `C:${h}`)
      .join(' ');
    const seen = toHex(facts.measurement);
    throw new ConstraintMismatchError(clause, seen, `measurement ${seen} does not match ${clause}`);
  }
  if (c.signer !== undefined && !bytesEqual(c.signer, facts.signer)) {
    const clause = `S:${toHex(c.signer)}`;
    const seen = toHex(facts.signer);
    throw new ConstraintMismatchError(clause, seen, `signer ${seen} does not match ${clause}`);
  }
  if (c.product !== undefined && c.product !== facts.product) {
    const clause = `PROD:${c.product}`;
    const seen = String(facts.product);
    throw new ConstraintMismatchError(clause, seen, `product ${seen} does not match ${clause}`);
  }
  if (c.minSvn !== undefined && facts.svn < c.minSvn) {
    const clause = `SVN:${c.minSvn}`;
    const seen = String(facts.svn);
    throw new ConstraintMismatchError(clause, seen, `security version ${seen} is below ${clause}`);
  }
  if (!facts.secure && c.simulationKeys.length > 0) {
    const keyHash = sha256(facts.platformKey);
    if (!includes(c.simulationKeys, keyHash)) {
      const clause = sortedHex(c.simulationKeys)
        .map((h) => `SIM:${h}`)
        .join(' ');
      const seen = toHex(keyHash);
      throw new ConstraintMismatchError(
        clause,
        seen,
        `insecure platform key hash ${seen} does not match ${clause}`,
      );
    }
  }
}

/** The service identity is not the one the SVC: clause names. */
export class ServiceMismatchError extends ConstraintMismatchError {}

/** The app's code id is not one the APP: clauses for that app admit. */
export class AppCodeMismatchError extends CloisterError {
  /** The APP: clauses of that app, canonical, space-separated. */
  readonly clause: string;
  /** The code id seen, lowercase hex. */
  readonly seen: string;
  constructor(clause: string, seen: string, message: string) {
    super('APP_CODE_MISMATCH', message);
    this.clause = clause;
    this.seen = seen;
  }
}

/**
 * Checks the SVC: clause: when the constraint has one, `serviceIdentity` (SHA-256 of the service
 * key, 32 bytes) must equal it (constant time), else ConstraintMismatchError naming the clause.
 * No SVC: clause admits any service.
 */
export function checkServiceClause(c: Constraint, serviceIdentity: Uint8Array): void {
  if (c.service === undefined) return;
  if (!constantTimeEqual(c.service, serviceIdentity)) {
    const clause = `SVC:${toHex(c.service)}`;
    const seen = toHex(serviceIdentity);
    throw new ServiceMismatchError(
      clause,
      seen,
      `service identity ${seen} does not match ${clause}`,
    );
  }
}

/**
 * Checks the APP: clauses of `app`: when the constraint names the app, `codeId` must be one of
 * its code ids, else AppCodeMismatchError (APP_CODE_MISMATCH) naming the clauses. Apps the
 * constraint does not name are not restricted.
 */
export function checkAppClause(c: Constraint, app: string, codeId: Uint8Array): void {
  const ids = c.apps?.get(app);
  if (ids === undefined) return;
  if (!includes(ids, codeId)) {
    const clause = sortedHex(ids)
      .map((h) => `APP:${app}=${h}`)
      .join(' ');
    const seen = toHex(codeId);
    throw new AppCodeMismatchError(
      clause,
      seen,
      `app ${JSON.stringify(app)} code id ${seen} does not match ${clause}`,
    );
  }
}
