/**
 * A hostile host for attack tests: the real enclave bundle in its worker, with the simulation
 * platform and a memory store answering its calls, and every host→enclave call in the test's
 * hands (`call`), in any order and with any content. `wrap` lets a test replace the host's
 * answers to the enclave's calls.
 */
import { join } from 'node:path';
import type { HostCallHandlers } from '@cloister/boundary';
import {
  clientHandshake,
  type ScpMessage,
  type ScpSession,
  type ScpSigner,
  webCryptoScp,
  webCryptoSigner,
} from '@cloister/core';
import { type EnclaveWorker, launchEnclaveWorker } from '../src/launcher/index.js';
import { enclaveOcalls } from '../src/node/node.js';
import { openSimulationPlatform } from '../src/platform/index.js';
import { createMemoryStore, type MemoryStore, storeOcalls } from '../src/store/index.js';
import { tempDir, testBuild } from './helpers.js';

export interface HostileHost {
  readonly worker: EnclaveWorker;
  readonly call: EnclaveWorker['call'];
  readonly store: MemoryStore;
  readonly logs: string[];
  readonly sent: { session: number; frame: Uint8Array }[];
  /** The next frame the enclave sends on `session` (scp.send), in order. */
  next(session: number): Promise<Uint8Array>;
  readonly ended: { session: number; code: string }[];
  readonly persisted: Uint8Array[];
  readonly exits: number[];
  readonly platformDir: string;
  close(): Promise<void>;
}

export async function hostileHost(
  o: {
    platformDir?: string;
    store?: MemoryStore;
    svn?: number;
    wrap?: (h: HostCallHandlers) => HostCallHandlers;
  } = {},
): Promise<HostileHost> {
  const build = await testBuild(o.svn ?? 1);
  const platformDir = o.platformDir ?? join(tempDir('cloister-hostile-'), 'platform');
  const platform = openSimulationPlatform({ dir: platformDir });
  const identity = platform.admit(build.bundle, build.manifest);
  const store = o.store ?? createMemoryStore();
  const logs: string[] = [];
  const sent: { session: number; frame: Uint8Array }[] = [];
  const ended: { session: number; code: string }[] = [];
  const persisted: Uint8Array[] = [];
  const exits: number[] = [];
  const inbox = new Map<number, Uint8Array[]>();
  const waiting = new Map<number, ((f: Uint8Array) => void)[]>();
  const base = enclaveOcalls(platform, identity, {
    ...storeOcalls(store),
    'service.persist': (r) => {
      persisted.push(r.sealedService);
      return {};
    },
  });
  const worker = await launchEnclaveWorker({
    code: build.bundle,
    ocalls: o.wrap ? o.wrap(base) : base,
    onLog: (_l, e) => logs.push(e),
    events: {
      'scp.send': (f) => {
        sent.push(f);
        const w = waiting.get(f.session)?.shift();
        if (w) w(f.frame);
        else inbox.set(f.session, [...(inbox.get(f.session) ?? []), f.frame]);
      },
      'scp.end': (f) => ended.push(f),
    },
    onExit: (i) => exits.push(i.exitCode),
  });
  return {
    worker,
    call: (name, req) => worker.call(name, req),
    store,
    logs,
    sent,
    next: (session) => {
      const f = inbox.get(session)?.shift();
      if (f) return Promise.resolve(f);
      return new Promise((r) => waiting.set(session, [...(waiting.get(session) ?? []), r]));
    },
    ended,
    persisted,
    exits,
    platformDir,
    close: async () => {
      await worker.terminate();
      platform.close();
    },
  };
}

/** A fresh client identity (P-256, WebCrypto). */
export async function clientIdentity(): Promise<ScpSigner> {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as Parameters<typeof webCryptoSigner>[0];
  return webCryptoSigner(
    pair,
    new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)),
  );
}

export interface HostileClient {
  readonly id: number;
  readonly session: ScpSession;
  /** Sends one request on this session and returns its response (notifications skipped). */
  call(op: string, args: Record<string, unknown>): Promise<ScpMessage & { type: 'response' }>;
}

/**
 * A client whose every frame the hostile host relays (scp.open, scp.frame with `ms`), accepting
 * any server (the tests here attack the host side, not the client's checks).
 */
export async function hostileClient(h: HostileHost, ms = () => 0): Promise<HostileClient> {
  const { session: id } = await h.call('scp.open', {});
  const send = (frame: Uint8Array) => h.call('scp.frame', { session: id, frame, ms: ms() });
  const hs = clientHandshake({
    crypto: webCryptoScp,
    identity: await clientIdentity(),
    authorize: async () => {},
  });
  await send(await hs.start());
  await hs.receive(await h.next(id));
  const done = await hs.receive(await h.next(id));
  for (const f of done.send) await send(f);
  const session = done.session;
  if (!session) throw new Error('no session');
  let rid = 0;
  return {
    id,
    session,
    async call(op, args) {
      const mine = ++rid;
      for (const f of await session.seal({ type: 'request', id: mine, op, args })) await send(f);
      for (;;) {
        for (const m of await session.open(await h.next(id))) {
          if (m.type === 'response' && m.id === mine) return m;
          if (m.type === 'close') throw new Error(`closed: ${m.code}`);
        }
      }
    },
  };
}
