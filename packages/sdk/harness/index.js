/**
 * Runs an app's module on the real enclave runtime (docs/app-abi.md) in this process, with an
 * in-memory ledger and no node: what a project's `npm test` uses. Test-only by construction: the
 * ledger's root record is "sealed" with the identity function and the ledger secret is random per
 * `loadApp`, so nothing here protects anything.
 *
 * The runtime and the ledger engine are loaded from this Cloister installation's compiled enclave
 * (`packages/enclave/dist`, built by `npm install` at the installation's root).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const ENCLAVE = new URL('../../enclave/dist/src/', import.meta.url);

async function enclave() {
  try {
    const runtime = await import(new URL('apps/runtime/index.js', ENCLAVE).href);
    const ledger = await import(new URL('ledger/ledger/index.js', ENCLAVE).href);
    return { runtime, ledger };
  } catch (e) {
    throw new Error(
      `cannot load the enclave runtime from ${ENCLAVE.pathname}: run \`npm install\` (or ` +
        `\`npx tsc -b\`) at the Cloister installation's root first (${e.message})`,
    );
  }
}

/** An in-memory LedgerStore (the enclave's RecordReader plus atomic batches). */
function memoryStore() {
  const records = new Map();
  const hex = (k) => Buffer.from(k).toString('hex');
  return {
    get: (key) => {
      const v = records.get(hex(key));
      return v === undefined ? undefined : Uint8Array.from(v);
    },
    write: async (batch) => {
      for (const op of batch) {
        if (op.type === 'put') records.set(hex(op.key), Uint8Array.from(op.value));
        else records.delete(hex(op.key));
      }
    },
  };
}

/** A stand-in client identity key for `name`: 0x04 ‖ 64 bytes derived from the name. */
export function testIdentity(name) {
  const h = (s) => createHash('sha256').update(`cloister-test-identity/${s}/${name}`).digest();
  return new Uint8Array(Buffer.concat([Buffer.of(4), h('x'), h('y')]));
}

/**
 * Deploys `wasm` (a path, a file URL or the bytes) as app `options.name` (default "app") on a
 * fresh runtime with an empty ledger. Throws the runtime's deploy errors (APP_IMPORT_UNKNOWN,
 * APP_ABI_VERSION, …) by name.
 */
export async function loadApp(wasm, options = {}) {
  const bytes = wasm instanceof Uint8Array ? wasm : new Uint8Array(readFileSync(wasm));
  const { runtime, ledger } = await enclave();
  const engine = await ledger.createLedgerEngine({
    store: memoryStore(),
    secret: { generation: 0, secret: new Uint8Array(randomBytes(32)) },
    rootSeal: { seal: (p) => Uint8Array.from(p), open: (s) => Uint8Array.from(s) },
  });
  const clock = options.now ?? (() => Date.now());
  const rt = runtime.createAppRuntime({
    engine,
    now: clock,
    ...(options.trace ? { trace: options.trace } : {}),
  });
  const name = options.name ?? 'app';
  const deployed = await rt.deploy(name, bytes);

  async function call(kind, method, args, o = {}) {
    const caller = o.caller ?? testIdentity(o.as ?? 'alice');
    const r = await rt.call({
      app: name,
      method,
      kind,
      args: JSON.stringify(args ?? null),
      caller,
      ...(o.requestId !== undefined ? { requestId: o.requestId } : {}),
      ...(o.fuel !== undefined ? { fuel: o.fuel } : {}),
    });
    return {
      result: JSON.parse(r.result),
      resultText: r.result,
      notifications: r.notifications.map((n) => JSON.parse(n)),
      txid: r.txid,
      repeated: r.repeated,
      fuelUsed: r.fuelUsed,
    };
  }

  return {
    name,
    codeId: deployed.codeId,
    routes: deployed.routes,
    query: (method, args, o) => call('query', method, args, o),
    transaction: (method, args, o) => call('transaction', method, args, o),
    callerId: (who = 'alice') =>
      Buffer.from(rt.callerId(name, typeof who === 'string' ? testIdentity(who) : who)).toString(
        'hex',
      ),
  };
}
