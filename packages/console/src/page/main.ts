/**
 * The console page (bundled for the browser; no Node built-in). Everything it calls verified is
 * checked here, in the user's browser: the node's evidence for a fresh nonce (verifyEvidence),
 * the handshake (connect: evidence, service, pin), and receipts (verifyReceipt with the claims).
 * What the local server proxies (status, apps) is shown as the node's claim. Nothing connects
 * before a constraint is given and the evidence passed it: a refused check turns the verdict red
 * and the page refuses to connect.
 */
import {
  browserIdentity,
  browserIdentityExists,
  type Claims,
  type Client,
  type ClientState,
  connect,
  type Identity,
  indexedDbState,
  ServiceChangedError,
  scpUrl,
  verifyReceipt,
} from '@cloister/client/browser';
import {
  decodeEvidencePayload,
  decodeSign1,
  fromBase64,
  fromHex,
  isAppId,
  isCloisterError,
  parseConstraint,
  toHex,
  type VerifiedEvidence,
  verifyEvidence,
} from '@cloister/core';
import { CONSOLE_ERROR_HEADER } from '../headers.js';
import { sharedState } from './shared-state.js';
import { saveTransaction, transactionsOf } from './store.js';

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the console page has no #${id}`);
  return e as T;
}

function text(id: string, value: string): void {
  el(id).textContent = value;
}

/**
 * Text that came from the node (or was built around it), made fit to show: no control, bidi or
 * other invisible formatting characters (a U+202E would show "counter" for "retnuoc" or reverse
 * the page's own words after it), at most `max` characters.
 */
function shown(s: string, max = 400): string {
  const clean = s.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '\uFFFD');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function describe(e: unknown): string {
  if (isCloisterError(e)) return shown(`${e.code}: ${e.message}`);
  return shown(e instanceof Error ? e.message : String(e));
}

const HEX64 = /^[0-9a-f]{64}$/;
const TXID = /^\d{1,16}\.\d{1,16}$/;

/**
 * Most characters of an app's result or notifications shown: results can reach 1 MiB, which the
 * page would lay out slowly and nobody reads in a box; the download and the CLI have all of it.
 */
const RESULT_SHOWN = 20_000;

/** A field of the node's answer shown as is when it has its documented form, else labelled. */
function claimed(v: unknown, ok: (v: unknown) => boolean): string {
  return ok(v) ? String(v) : 'malformed (the node sent something else)';
}

const isIndex = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHex64 = (v: unknown) => typeof v === 'string' && HEX64.test(v);

function row(cells: readonly string[], header = false): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement(header ? 'th' : 'td');
    td.textContent = c;
    if (!header) td.className = 'mono';
    tr.append(td);
  }
  return tr;
}

function setVerdict(id: string, kind: 'ok' | 'bad' | 'pending', message: string): void {
  const v = el(id);
  v.hidden = false;
  v.className = `verdict ${kind}`;
  v.textContent = message;
}

interface Config {
  readonly nodeUrl: string;
  readonly constraint?: string;
  /** Pins and roots are kept by the console's server in the Cloister home (shared-state.ts). */
  readonly sharedState?: boolean;
}

/** Where this page keeps pins and signed roots: the Cloister home when the console serves it. */
function clientState(): ClientState {
  return page.config.sharedState === true ? sharedState() : indexedDbState();
}

// Invariant: `constraint` is parsed (parseConstraint accepted it) whenever it is set.
const page = {
  config: { nodeUrl: '' } as Config,
  constraint: undefined as string | undefined,
  // Invariant: true only after verifyEvidence accepted fresh evidence under `constraint`.
  evidenceOk: false,
  /** The last check could not reach the node (no evidence was checked, none refused). */
  unreached: false,
  identity: undefined as Identity | undefined,
  client: undefined as Client | undefined,
  /** The last transaction's receipt, once fetched, and the service its connection verified. */
  last: undefined as
    | { txid: string; claims: Claims; receipt: Uint8Array; service: Uint8Array }
    | undefined,
  /** Counts calls: a transaction's receipt shows only while no later call was started. */
  calls: 0,
  /**
   * The service a refused connect showed instead of the pinned one (ServiceChangedError.shown),
   * offered for acceptance; set only by that refusal, cleared by any connect.
   */
  changedService: undefined as Uint8Array | undefined,
  /** The service the user accepted with the button, for the next connect only. */
  accepting: undefined as Uint8Array | undefined,
};

function setConstraint(c: string | undefined, source: string): void {
  page.constraint = c;
  page.evidenceOk = false;
  text('constraint-value', c ?? 'none');
  text('constraint-source', c === undefined ? '' : `(from ${source})`);
  el('constraint-missing').hidden = c !== undefined;
}

async function checkEvidence(): Promise<void> {
  page.evidenceOk = false;
  page.unreached = false;
  el('sim-banner').hidden = true;
  const table = el<HTMLTableElement>('evidence-table');
  table.replaceChildren();
  if (page.constraint === undefined) {
    setVerdict('verdict', 'bad', 'not checked: no constraint given; nothing is accepted');
    return;
  }
  setVerdict('verdict', 'pending', 'checking…');
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  let evidence: Uint8Array;
  let identityPublicKey: Uint8Array;
  try {
    const r = await fetch(`/v1/evidence?nonce=${toHex(nonce)}`);
    const body = (await r.json().catch(() => ({}))) as {
      evidence?: string;
      identityPublicKey?: string;
      error?: { code?: unknown; message?: unknown };
    };
    // The console's own answer when the node is down or is no Cloister node: nothing was
    // checked, so nothing was refused either.
    // Only the console's own answer (its header; a node's headers are never passed on): a node
    // answering 502 NETWORK itself must not turn a refusal into "not checked".
    if (r.status === 502 && r.headers.get(CONSOLE_ERROR_HEADER) === 'NETWORK') {
      page.unreached = true;
      setVerdict(
        'verdict',
        'pending',
        `NOT CHECKED: ${shown(String(body.error?.message))}. Is the node running at ${page.config.nodeUrl}? Press "Check again" once it is.`,
      );
      return;
    }
    if (!r.ok || typeof body.evidence !== 'string' || typeof body.identityPublicKey !== 'string')
      throw new Error(`the node did not return evidence (HTTP ${r.status})`);
    evidence = fromBase64(body.evidence, 'evidence');
    identityPublicKey = fromHex(body.identityPublicKey, 'identity public key');
  } catch (e) {
    setVerdict('verdict', 'bad', `REFUSED: ${describe(e)}`);
    return;
  }
  let v: VerifiedEvidence;
  try {
    v = await verifyEvidence(evidence, { nonce, identityPublicKey, constraint: page.constraint });
  } catch (e) {
    setVerdict('verdict', 'bad', `REFUSED — ${describe(e)}. The page will not connect.`);
    try {
      const c = decodeEvidencePayload(decodeSign1(evidence).payload);
      // Refused, yet the node claims no hardware protection: the warning stands all the same.
      const simulated = c.platform === 'simulation';
      el('sim-banner').hidden = !simulated;
      table.append(row(['as claimed, NOT verified', '']));
      table.append(
        row(['platform', simulated ? 'simulation (INSECURE)' : shown(c.platform, 64)]),
        row(['measurement', toHex(c.measurement)]),
      );
    } catch {
      table.append(row(['the evidence could not even be parsed', '']));
    }
    return;
  }
  page.evidenceOk = true;
  el('sim-banner').hidden = v.secure;
  setVerdict(
    'verdict',
    'ok',
    `ACCEPTED under the constraint ${page.constraint}${v.secure ? ' ' : ' (insecure platform admitted by SEC:INSECURE) '}${later(page.constraint)}${gaps(page.constraint)}`,
  );
  table.append(
    row(['platform', v.secure ? v.platform : `${v.platform} (INSECURE)`]),
    row(['root of trust', v.rootOfTrust]),
    row(['measurement', toHex(v.measurement)]),
    row(['signer', toHex(v.signer)]),
    row(['product / svn', `${v.product} / ${v.svn}`]),
    row(['node identity key', toHex(identityPublicKey)]),
  );
}

/**
 * The clauses the evidence cannot show, said so that the verdict does not seem to vouch for them:
 * the enclave signs the service identity in the handshake and the code id of each app called.
 */
function later(constraint: string): string {
  const c = parseConstraint(constraint);
  const parts: string[] = [];
  if (c.apps !== undefined && c.apps.size > 0) parts.push('its APP: clauses at each call');
  if (c.service !== undefined) parts.push('its SVC: clause when connecting');
  return parts.length === 0
    ? ''
    : `— the evidence passed the enclave's clauses; ${parts.join(', and ')} (they are checked then, and refused then if they do not match) `;
}

/** What a constraint leaves unchecked, said next to a verdict that accepted under it. */
function gaps(constraint: string): string {
  const c = parseConstraint(constraint);
  const notes: string[] = [];
  if (c.measurements.length === 0)
    notes.push('it names no measurement (no C: clause): any code its signer signs passes');
  if (c.apps === undefined || c.apps.size === 0)
    notes.push("it names no app (no APP: clause): the apps' code is not checked");
  return notes.length === 0 ? '' : `— note: ${notes.join('; ')}`;
}

function raiseAlarm(message: string): void {
  const alarm = el('alarm');
  alarm.hidden = false;
  alarm.textContent = message;
}

/**
 * The status is only the node's claim, but a service other than the one pinned for this node's
 * URL is worth an alarm before anyone connects (connect() then refuses it, SERVICE_CHANGED).
 */
async function comparePin(service: string): Promise<void> {
  const pinned = await clientState().pins.get(scpUrl(page.config.nodeUrl));
  if (pinned === undefined || toHex(pinned) === service) return;
  raiseAlarm(
    `ALARM — SERVICE_CHANGED: the node's status (its claim, not verified) names service ${service}, but ${toHex(pinned)} was pinned for ${page.config.nodeUrl}. This may be a different service (its data, history and keys are not the ones you knew); connecting will be refused.`,
  );
}

/**
 * What a failed read of the node's public API says: the console's own 502 means the node could
 * not be reached; anything else is the node's answer (its message is its claim, shown checked).
 */
async function readFailure(r: Response, what: string): Promise<Error> {
  const body = (await r.json().catch(() => ({}))) as { error?: { message?: unknown } };
  const message = typeof body.error?.message === 'string' ? body.error.message : undefined;
  if (r.status === 502 && r.headers.get(CONSOLE_ERROR_HEADER) === 'NETWORK') {
    return new Error(
      `the node at ${page.config.nodeUrl} could not be reached${message === undefined ? '' : ` (${message})`}: is it running?`,
    );
  }
  return new Error(
    `the node answered ${what} with HTTP ${r.status}${message === undefined ? '' : `: ${message}`}`,
  );
}

async function refreshStatus(): Promise<void> {
  try {
    const r = await fetch('/v1/status');
    if (!r.ok) throw await readFailure(r, '/v1/status');
    const s = (await r.json()) as Record<string, unknown>;
    text('status-index', claimed(s.index, isIndex));
    text('status-signed', claimed(s.lastSigned, isIndex));
    text('status-state', claimed(s.stateHash, isHex64));
    text('status-service', claimed(s.serviceIdentity, isHex64));
    text('status-error', '');
    if (isHex64(s.serviceIdentity)) await comparePin(s.serviceIdentity as string);
  } catch (e) {
    text('status-error', `could not read the status: ${describe(e)}`);
  }
}

interface AppRecord {
  app: string;
  codeId: string;
  loaded: boolean;
  history: { codeId: string; txid: string }[];
}

async function refreshApps(): Promise<void> {
  const table = el<HTMLTableElement>('apps-table');
  try {
    const r = await fetch('/v1/apps');
    if (!r.ok) throw await readFailure(r, '/v1/apps');
    const { apps } = (await r.json()) as { apps: AppRecord[] };
    if (!Array.isArray(apps)) throw new Error('the node did not return a list of apps');
    const rows = [row(['app', 'current code id', 'upgrade history (code id @ txid)'], true)];
    const isName = (v: unknown) => typeof v === 'string' && isAppId(v);
    const isTxid = (v: unknown) => typeof v === 'string' && TXID.test(v);
    for (const a of apps) {
      const history = Array.isArray(a?.history) ? a.history : [];
      rows.push(
        row([
          `${claimed(a?.app, isName)}${a?.loaded === false ? ' (not loaded)' : ''}`,
          claimed(a?.codeId, isHex64),
          history
            .map((h) => `${claimed(h?.codeId, isHex64)} @ ${claimed(h?.txid, isTxid)}`)
            .join('\n'),
        ]),
      );
    }
    if (apps.length === 0) rows.push(row(['no app deployed', '', '']));
    table.replaceChildren(...rows);
    text('apps-error', '');
  } catch (e) {
    // Not "loading…" forever: the list is not known (what was shown before stays, if any).
    if (table.textContent === 'loading…') table.replaceChildren(row(['not known yet']));
    text('apps-error', `could not read the apps: ${describe(e)}`);
  }
}

async function showMine(): Promise<void> {
  const table = el<HTMLTableElement>('mine-table');
  if (page.identity === undefined) {
    table.replaceChildren(row(['create or load an identity to see your transactions']));
    return;
  }
  const mine = await transactionsOf(toHex(page.identity.publicKey));
  table.replaceChildren(
    row(['txid', 'app', 'method', 'result'], true),
    // The app's own words, another user's among them (a name in a result): made fit to show.
    ...mine.map((t) =>
      row([shown(t.txid), shown(t.app), shown(t.method), shown(t.result, RESULT_SHOWN)]),
    ),
  );
}

async function useIdentity(create: boolean): Promise<void> {
  text('identity-error', '');
  const name = el<HTMLInputElement>('identity-name').value.trim();
  if (!/^[\w.-]{1,64}$/.test(name)) {
    text('identity-error', 'a name is 1 to 64 letters, digits, "_", "." or "-"');
    return;
  }
  try {
    const exists = await browserIdentityExists(name);
    if (create && exists) {
      text('identity-error', `an identity named "${name}" exists already: load it`);
      return;
    }
    if (!create && !exists) {
      text('identity-error', `no identity named "${name}" in this browser: create it`);
      return;
    }
    page.identity = await browserIdentity(name);
  } catch (e) {
    text('identity-error', describe(e));
    return;
  }
  await page.client?.close();
  page.client = undefined;
  text('connection-state', 'not connected');
  text('identity-key', toHex(page.identity.publicKey));
  await showMine();
}

/**
 * The page's client while it can still call, else undefined. A client whose connection ended
 * (the node stopped or dropped it: the page connects with `reconnect: false`) is let go, and the
 * page says so, so that Connect or Run opens a new one instead of failing on the dead one.
 */
function liveClient(): Client | undefined {
  const c = page.client;
  if (c === undefined || c.ended === undefined) return c;
  page.client = undefined;
  text(
    'connection-state',
    `not connected: the connection ended (${describe(c.ended)}); Connect or Run opens a new one`,
  );
  return undefined;
}

async function doConnect(): Promise<Client | undefined> {
  text('connect-error', '');
  const live = liveClient();
  if (live !== undefined) return live;
  if (page.constraint === undefined) {
    text('connect-error', 'give a constraint first: nothing is accepted without one');
    return undefined;
  }
  if (!page.evidenceOk) {
    text(
      'connect-error',
      page.unreached
        ? 'not connected: the node could not be reached, so its evidence is not checked yet (press "Check again" once it runs)'
        : 'refused: the evidence did not pass the constraint',
    );
    return undefined;
  }
  if (page.identity === undefined) {
    text('connect-error', 'create or load an identity first');
    return undefined;
  }
  // Only the service the user accepted by name (the accept button) may replace the pin, and only
  // on this attempt: a node that shows yet another service now is refused again.
  const accept = page.accepting;
  page.accepting = undefined;
  page.changedService = undefined;
  el('service-accept-row').hidden = true;
  text('connection-state', 'connecting…');
  try {
    page.client = await connect(page.config.nodeUrl, {
      constraint: page.constraint,
      identity: page.identity,
      state: clientState(),
      reconnect: false,
      ...(accept === undefined ? {} : { acceptServiceChange: accept }),
    });
  } catch (e) {
    if (e instanceof ServiceChangedError) {
      raiseAlarm(
        `ALARM — SERVICE_CHANGED: ${e.message}. This may be a different service (its data, history and keys are not the ones you knew). Not connected.`,
      );
      page.changedService = e.shown.slice();
      text(
        'service-accept',
        `I checked service ${toHex(e.shown)} with this node's operator: accept it for ${page.config.nodeUrl}`,
      );
      el('service-accept-row').hidden = false;
    }
    text('connection-state', 'not connected');
    text('connect-error', describe(e));
    return undefined;
  }
  const service = toHex(page.client.service.identity);
  // What connect itself did with the pin (read under the state's lock), not a read made before
  // it: a CLI run sharing the state could have pinned in between.
  const pin = page.client.pin;
  if (pin.how === 'replaced') {
    el('alarm').hidden = true;
    text(
      'connection-state',
      `connected; service ${service} (now pinned for this node URL, replacing ${toHex(pin.previous)} at your request)`,
    );
  } else if (pin.how === 'first-use') {
    text(
      'connection-state',
      page.config.sharedState === true
        ? `connected; service ${service}: FIRST USE — no service was pinned for this node URL in the client state of your Cloister home (which \`cloister call\` shares), so this one is pinned now and later changes raise the alarm.`
        : `connected; service ${service}: FIRST USE — no service was pinned for this node URL in this browser at this console address (${location.origin}), so this one is pinned now and later changes raise the alarm. If you connected before from another console address, this is not that pin.`,
    );
  } else {
    text('connection-state', `connected; service ${service} (pinned for this node URL)`);
  }
  return page.client;
}

function acceptChangedService(): void {
  if (page.changedService === undefined) return;
  page.accepting = page.changedService;
  void doConnect();
}

/** Which code answered, and whether the constraint checked it (an app it names no APP: for is not). */
function showCode(app: string, codeId: Uint8Array): void {
  const checked = page.constraint !== undefined && parseConstraint(page.constraint).apps?.has(app);
  text(
    'call-code',
    checked
      ? `${toHex(codeId)} (signed by the enclave, checked against your APP:${app} clause)`
      : `${toHex(codeId)} (signed by the enclave; NOT checked: your constraint has no APP:${app} clause, so any code the operator deploys as ${app} answers)`,
  );
}

function fieldFor(code: string): string {
  if (code === 'APP_NOT_FOUND' || code === 'APP_CODE_MISMATCH') return 'call-app-error';
  if (code === 'APP_METHOD_UNKNOWN' || code === 'APP_METHOD_KIND') return 'call-method-error';
  return 'call-error';
}

async function runCall(): Promise<void> {
  const call = ++page.calls;
  for (const id of ['call-app-error', 'call-method-error', 'call-args-error', 'call-error'])
    text(id, '');
  text('call-result', '');
  text('call-code', '');
  text('call-notifications', '');
  // The receipt box belongs to the transaction that showed it: a later call (a query, a refusal)
  // must not leave the earlier transaction's receipt and verdict beside its own result.
  el('receipt-box').hidden = true;
  el('receipt-verdict').hidden = true;
  text('receipt-txid', '');
  receiptButtons(false);
  page.last = undefined;
  const app = el<HTMLInputElement>('call-app').value.trim();
  const method = el<HTMLInputElement>('call-method').value.trim();
  const kind = el<HTMLSelectElement>('call-kind').value;
  let bad = false;
  if (app === '') {
    text('call-app-error', 'give the app name');
    bad = true;
  } else if (!isAppId(app)) {
    text(
      'call-app-error',
      'an app name is 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit',
    );
    bad = true;
  }
  if (method === '') {
    text('call-method-error', 'give the method name');
    bad = true;
  } else if (!/^[A-Za-z0-9_.-]{1,128}$/.test(method)) {
    text('call-method-error', 'a method name is 1 to 128 letters, digits, "_", "." or "-"');
    bad = true;
  }
  let args: unknown;
  try {
    args = JSON.parse(el<HTMLTextAreaElement>('call-args').value);
  } catch (e) {
    text('call-args-error', `not valid JSON: ${(e as Error).message}`);
    bad = true;
  }
  if (bad) return;
  const client = await doConnect();
  if (client === undefined) {
    text('call-error', 'not connected (see above)');
    return;
  }
  const notes: unknown[] = [];
  const onNotification = (n: unknown) => {
    if (call !== page.calls) return;
    notes.push(n);
    text('call-notifications', shown(JSON.stringify(notes), RESULT_SHOWN));
  };
  try {
    if (kind === 'query') {
      const r = await client.app(app).query(method, args, { onNotification });
      if (call !== page.calls) return;
      text('call-result', shown(r.json, RESULT_SHOWN));
      showCode(app, r.codeId);
      return;
    }
    const r = await client.app(app).transact(method, args, { onNotification });
    const identity = page.identity as Identity;
    // Kept in "your transactions" even when a later call has taken the form meanwhile.
    await saveTransaction({
      owner: toHex(identity.publicKey),
      txid: r.txid,
      app,
      method,
      result: r.json,
    });
    await showMine();
    if (call !== page.calls) return;
    showCode(app, r.codeId);
    text(
      'call-result',
      `${shown(r.json, RESULT_SHOWN)}  (txid ${r.txid}${r.repeated ? ', repeated' : ''})`,
    );
    el('receipt-box').hidden = false;
    el('receipt-verdict').hidden = true;
    text(
      'receipt-txid',
      `${r.txid} (committed; waiting for its receipt, which comes with the node's next signature…)`,
    );
    let receipt: Uint8Array;
    try {
      ({ receipt } = await client.receipt(r.txid, { wait: true, claims: r.claims }));
    } catch (e) {
      if (call !== page.calls) return;
      liveClient();
      // The transaction stands: only its proof is missing, and it can be fetched later.
      text(
        'receipt-txid',
        `${r.txid}: committed, but its receipt could not be fetched (${describe(e)}). Fetch it later: cloister receipt get ${page.config.nodeUrl} ${r.txid}`,
      );
      return;
    }
    if (call !== page.calls) return;
    page.last = { txid: r.txid, claims: r.claims, receipt, service: client.service.identity };
    text('receipt-txid', r.txid);
    el('receipt-verdict').hidden = true;
    receiptButtons(true);
  } catch (e) {
    if (call !== page.calls) return;
    liveClient();
    text(isCloisterError(e) ? fieldFor(e.code) : 'call-error', describe(e));
  }
}

/** The receipt's buttons work only once the receipt is here (a click before did nothing, or lied). */
function receiptButtons(enabled: boolean): void {
  el<HTMLButtonElement>('receipt-download').disabled = !enabled;
  el<HTMLButtonElement>('receipt-verify').disabled = !enabled;
}

function downloadReceipt(): void {
  if (page.last === undefined) return;
  const blob = new Blob([page.last.receipt.slice()], { type: 'application/cbor' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `receipt-${page.last.txid}.cbor`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function checkReceipt(): Promise<void> {
  const last = page.last;
  if (last === undefined || page.constraint === undefined) {
    setVerdict('receipt-verdict', 'bad', 'no receipt yet: run a transaction first');
    return;
  }
  try {
    const v = await verifyReceipt(last.receipt, {
      constraint: page.constraint,
      service: last.service,
      claims: last.claims,
    });
    setVerdict(
      'receipt-verdict',
      'ok',
      `receipt VERIFIED in this page: transaction ${v.txid} is in the log of service ${toHex(v.service)}, signed at tree size ${v.size}, with the claims of your call`,
    );
  } catch (e) {
    setVerdict('receipt-verdict', 'bad', `receipt REFUSED — ${describe(e)}`);
  }
}

/** A receipt is a few kilobytes (its path grows with the log's logarithm): a larger file is not one. */
const MAX_RECEIPT_FILE_BYTES = 1024 * 1024;

/**
 * Checks a receipt file the user gives (one from `cloister receipt get`, or someone else's): its
 * signature chain against the constraint, and its service against the one pinned for this node
 * URL, if any. Its claims (what was asked and answered) are not checked: only their keeper can.
 */
async function checkReceiptFile(): Promise<void> {
  const file = el<HTMLInputElement>('receipt-file').files?.[0];
  if (file === undefined) return;
  if (page.constraint === undefined) {
    setVerdict(
      'receipt-file-verdict',
      'bad',
      'give a constraint first: a receipt is checked against it (its endorsement carries the node evidence)',
    );
    return;
  }
  if (file.size > MAX_RECEIPT_FILE_BYTES) {
    setVerdict(
      'receipt-file-verdict',
      'bad',
      `not a receipt: ${file.size} bytes, and a receipt is a few kilobytes (at most ${MAX_RECEIPT_FILE_BYTES})`,
    );
    return;
  }
  setVerdict('receipt-file-verdict', 'pending', 'checking…');
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const pinned = await clientState().pins.get(scpUrl(page.config.nodeUrl));
    const v = await verifyReceipt(bytes, {
      constraint: page.constraint,
      ...(pinned === undefined ? {} : { service: pinned }),
    });
    setVerdict(
      'receipt-file-verdict',
      'ok',
      `receipt VERIFIED in this page: transaction ${v.txid} is in the log of service ${toHex(v.service)} ${pinned === undefined ? `(no service is pinned for ${page.config.nodeUrl} here: compare it with the one the operator gave you)` : `(the service pinned for ${page.config.nodeUrl})`}, signed at tree size ${v.size}. What was asked and answered is not checked: only whoever kept the call's claims can.`,
    );
  } catch (e) {
    setVerdict('receipt-file-verdict', 'bad', `receipt REFUSED — ${describe(e)}`);
  }
}

/** Where the last constraint used is kept (the user's own choice, on this console's origin). */
const LAST_CONSTRAINT_KEY = 'cloister-console:last-constraint';

async function start(): Promise<void> {
  page.config = (await (await fetch('/config.json')).json()) as Config;
  text('node-url', page.config.nodeUrl);
  // A constraint in the address is only written into the field, never used: a link (from the
  // node's operator, say) must not choose what this page accepts. Using it takes the button.
  const fromUrl = new URLSearchParams(location.search).get('constraint') ?? undefined;
  if (page.config.constraint === undefined && fromUrl !== undefined) {
    el<HTMLInputElement>('constraint-input').value = fromUrl;
    text(
      'constraint-error',
      'the address carried a constraint: it is in the field, not in use; check every clause, then press "Use this constraint"',
    );
  }
  if (page.config.constraint !== undefined) {
    try {
      parseConstraint(page.config.constraint);
      setConstraint(page.config.constraint, 'the --constraint flag');
    } catch (e) {
      setConstraint(undefined, '');
      text(
        'constraint-error',
        `the constraint from the --constraint flag is refused: ${describe(e)}`,
      );
    }
  } else {
    setConstraint(undefined, '');
    // The last one used here goes into the field, not into use: saves typing it again, and the
    // button keeps what is accepted the user's act.
    const last = localStorage.getItem(LAST_CONSTRAINT_KEY);
    if (fromUrl === undefined && last !== null) {
      el<HTMLInputElement>('constraint-input').value = last;
      text(
        'constraint-error',
        'the constraint you last used here is in the field, not in use: press "Use this constraint" to use it again',
      );
    }
  }

  el('constraint-apply').onclick = async () => {
    text('constraint-error', '');
    const c = el<HTMLInputElement>('constraint-input').value.trim();
    try {
      parseConstraint(c);
    } catch (e) {
      text('constraint-error', describe(e));
      return;
    }
    await page.client?.close();
    page.client = undefined;
    text('connection-state', 'not connected');
    setConstraint(c, 'typed in');
    localStorage.setItem(LAST_CONSTRAINT_KEY, c);
    await checkEvidence();
  };
  // Enter in a one-line field does what its button does.
  const onEnter = (field: string, button: string): void => {
    el(field).addEventListener('keydown', (e) => {
      if (e.key === 'Enter') el(button).click();
    });
  };
  onEnter('constraint-input', 'constraint-apply');
  onEnter('identity-name', 'identity-load');
  onEnter('call-app', 'call-run');
  onEnter('call-method', 'call-run');
  el('receipt-file').onchange = () => void checkReceiptFile();
  el('evidence-check').onclick = () => void checkEvidence();
  el('status-refresh').onclick = () => void refreshStatus();
  el('identity-create').onclick = () => void useIdentity(true);
  el('identity-load').onclick = () => void useIdentity(false);
  el('connect').onclick = () => void doConnect();
  el('service-accept').onclick = acceptChangedService;
  el('call-run').onclick = () => void runCall();
  el('receipt-download').onclick = downloadReceipt;
  el('receipt-verify').onclick = () => void checkReceipt();

  await Promise.all([checkEvidence(), refreshStatus(), refreshApps(), showMine()]);
  // One poll at a time: a node that answers slowly must not pile requests up.
  let polling = false;
  setInterval(() => {
    if (polling) return;
    polling = true;
    liveClient(); // a connection the node ended is said as such, not left as "connected"
    void Promise.all([refreshStatus(), refreshApps()]).finally(() => {
      polling = false;
    });
  }, 3000);
  document.body.dataset.ready = 'true';
}

void start();
