/**
 * An in-process node for client tests: core's serverHandshake and record layer, a service from
 * core's log kit (real evidence, endorsement, log, receipts), and an in-memory transport. It
 * records every frame and every decrypted request it saw, so tests can assert what the client
 * sent — and what it never sent. Knobs simulate a lost response, a dropped socket and a slow
 * signature.
 */
import {
  appInfoPayload,
  claimsRequest,
  ENTRY_KIND,
  encodeAlert,
  FRAME,
  isCloisterError,
  type ScpMessage,
  type ScpSession,
  serverHandshake,
  sha256,
  utf8,
  webCryptoScp,
} from '@cloister/core';
import { p256 } from '@noble/curves/nist.js';
import { KitService } from '../../core/test/log-kit.js';
import type { Socket, Transport } from '../src/ports.js';

export { CONSTRAINT, SECURE_CONSTRAINT } from '../../core/test/log-kit.js';

export interface FakeApp {
  codeId: Uint8Array;
  /** Notifications (JSON text) each call emits before its response. */
  notify?: string[];
  /** The code id a query's answer names instead (a node running other code than it signed). */
  answerCodeId?: Uint8Array;
}

interface Conn {
  readonly client: Socket;
  session: ScpSession | undefined;
  closed: boolean;
}

type Args = Map<string, unknown>;

export class FakeNode {
  readonly kit: KitService;
  readonly apps = new Map<string, FakeApp>();
  /** Every frame any client sent, in order. */
  readonly frames: Uint8Array[] = [];
  /** Every request the node decrypted, in order. */
  readonly requests: { op: string; args: Args }[] = [];
  /** requestId → the stored answer and the code id that made it: a transaction applies once. */
  readonly applied = new Map<string, { result: string; txid: string; codeId: Uint8Array }>();
  /** How many times a transaction's effect ran (the counter a replay must not advance). */
  effects = 0;
  connections = 0;
  /** The next N transactions are applied but the connection drops before the answer. */
  loseResponses = 0;
  /**
   * The next N transactions are applied, then a hostile host withholds the answer and forges a
   * handshake ALERT (unauthenticated) before closing.
   */
  alertInsteadOfAnswer = 0;
  /** Answer the next N consistency requests with ENCLAVE_FAILED (a node's passing trouble). */
  failConsistency = 0;
  /** Answer consistency requests with this result instead of the proof (a non-conforming node). */
  consistencyAnswer: Record<string, unknown> | undefined;
  /** Never answer consistency requests while true (a node stalling the root check). */
  stallConsistency = false;
  /** Apply transactions but answer no query, transaction or receipt while true (a host withholding). */
  stallAnswers = false;
  /**
   * The next N node.status requests are preceded, on the connection that asks, by an answer to the
   * last transaction received (on whichever connection): a node answering a call never sent on
   * that session.
   */
  answerUnsentOnStatus = 0;
  private lastTransact: { id: number; codeId: unknown } | undefined;
  /** Answer queries this many ms late (a slow node). */
  delayQueriesMs = 0;
  /** While set, queries are answered only once it resolves (a node answering late, on cue). */
  holdQueries: Promise<void> | undefined;
  /** The result the next status requests are answered with instead (a non-conforming node). */
  statusAnswer: Record<string, unknown> | undefined;
  /** Answer the next N queries with a request under the query's id (a non-conforming node). */
  requestInsteadOfAnswer = 0;
  /** Never answer app.info while true. */
  stallInfo = false;
  /** Answer the next request with this close code (an authenticated close), then close. */
  closeWith: string | undefined;
  /** Answer RECEIPT_NOT_READY this many times before signing the log. */
  signAfterPolls = 0;
  /** The result receipt requests are answered with instead (a non-conforming node). */
  receiptAnswer: Record<string, unknown> | undefined;
  /** Answer a receipt request with the receipt of this other entry index (a lying node). */
  receiptOf: number | undefined;
  /** Answer receipt requests from this other service's log (genuine receipts, another service's). */
  receiptsFrom: KitService | undefined;
  /** Sign app.info with a flipped bit (a node lying about the code it runs). */
  badInfoSignature = false;
  /** Fields that replace those of app.info's answer (a non-conforming node). */
  infoAnswer: Record<string, unknown> | undefined;
  /** Fields that replace those of a new transaction's answer (a non-conforming node). */
  transactAnswer: Record<string, unknown> | undefined;
  /** What node.status says of lastSigned instead of the truth (a node rolled back). */
  statusLastSigned: number | undefined;
  /** What node.status says of its term instead of 1 (a non-conforming node). */
  statusTerm: number | undefined;
  /** Answer receipt requests with this error instead (a node refusing them). */
  receiptError: { code: string; message: string } | undefined;
  /** Answer every query and transaction APP_CODE_CHANGED, whatever code id it names (a lying node). */
  codeChangedAlways = false;
  /** Refuse new connections (the transport rejects) while true. */
  down = false;
  private readonly conns = new Set<Conn>();

  /** Connections open now (neither side closed them). */
  get open(): number {
    return this.conns.size;
  }

  constructor(kit = new KitService()) {
    this.kit = kit;
  }

  get serviceIdentity(): Uint8Array {
    return sha256(this.kit.service.publicKey);
  }

  /** Drops every open connection (as a network failure would). */
  dropAll(): void {
    for (const c of this.conns) this.close(c, 'dropped by the test');
  }

  readonly transport: Transport = async () => {
    if (this.down) throw new Error('connect ECONNREFUSED (fake node is down)');
    this.connections++;
    const client: Socket = {
      send: (frame) => {
        if (conn.closed) return;
        const copy = frame.slice();
        // What reached the node, in order: recorded on arrival, as a socket delivers frames
        // written before its close even when the node handles them no more.
        this.frames.push(copy);
        queueMicrotask(() => this.routes.get(conn)?.(copy));
      },
      close: () => this.close(conn, 'closed by the client'),
      onmessage: undefined,
      onclose: undefined,
    };
    const conn: Conn = { client, session: undefined, closed: false };
    this.conns.add(conn);
    const hs = serverHandshake({
      crypto: webCryptoScp,
      nodeSigner: {
        publicKey: this.kit.node.publicKey,
        sign: async (d) => p256.sign(d, this.kit.node.secret),
      },
      serviceKey: this.kit.service.publicKey,
      evidence: this.kit.ev,
      endorsement: this.kit.end,
    });
    let chain = Promise.resolve();
    this.routes.set(conn, (frame) => {
      chain = chain.then(() => this.handle(conn, hs, frame));
    });
    return client;
  };

  /** Per open connection: its frame handler (frames are handled one at a time, in order). */
  private readonly routes = new Map<Conn, (frame: Uint8Array) => void>();

  /** Delivers frames in order, after this turn; frames sent before a close still arrive first. */
  private send(c: Conn, frames: Uint8Array[]): void {
    if (c.closed) return;
    for (const f of frames) {
      const copy = f.slice();
      setImmediate(() => c.client.onmessage?.(copy));
    }
  }

  private close(c: Conn, why: string): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    this.routes.delete(c);
    setImmediate(() => c.client.onclose?.(why));
  }

  private async handle(
    c: Conn,
    hs: ReturnType<typeof serverHandshake>,
    frame: Uint8Array,
  ): Promise<void> {
    if (c.closed) return;
    if (c.session === undefined) {
      try {
        const r = await hs.receive(frame);
        this.send(c, r.send);
        if (r.session) c.session = r.session;
      } catch (e) {
        const code = isCloisterError(e) ? e.code : 'SCP_HANDSHAKE';
        this.send(c, [encodeAlert(code, (e as Error).message)]);
        this.close(c, 'handshake failed');
      }
      return;
    }
    let messages: ScpMessage[];
    try {
      messages = await c.session.open(frame);
    } catch {
      this.close(c, 'record failed');
      return;
    }
    for (const m of messages) {
      if (m.type !== 'request') continue;
      const args = m.args instanceof Map ? m.args : new Map(Object.entries(m.args));
      this.requests.push({ op: m.op, args });
      if (m.op === 'transact') this.lastTransact = { id: m.id, codeId: args.get('codeId') };
      await this.answer(c, m.id, m.op, args);
    }
  }

  private async reply(c: Conn, m: ScpMessage): Promise<void> {
    if (c.closed || c.session === undefined) return;
    this.send(c, await c.session.seal(m));
  }

  private async answer(c: Conn, id: number, op: string, a: Args): Promise<void> {
    if (op === 'consistency' && this.stallConsistency) return;
    const ok = (result: Record<string, unknown>) =>
      this.reply(c, { type: 'response', id, ok: true, result });
    const err = (code: string, message: string) =>
      this.reply(c, { type: 'response', id, ok: false, code, message });
    const app = this.apps.get(a.get('app') as string);
    if (this.closeWith !== undefined) {
      const code = this.closeWith;
      this.closeWith = undefined;
      await this.reply(c, { type: 'close', code, message: 'the node ended this session' });
      this.close(c, 'closed by the node');
      return;
    }
    switch (op) {
      case 'app.info': {
        if (this.stallInfo) return;
        if (app === undefined) return err('APP_NOT_FOUND', `no app ${String(a.get('app'))}`);
        const name = a.get('app') as string;
        const sig = p256.sign(
          appInfoPayload(c.session?.sessionHash as Uint8Array, name, app.codeId),
          this.kit.node.secret,
        );
        if (this.badInfoSignature) sig[5] = (sig[5] as number) ^ 1;
        return ok({ app: name, codeId: app.codeId, index: 3, sig, ...this.infoAnswer });
      }
      case 'query':
      case 'transact': {
        if (app === undefined) return err('APP_NOT_FOUND', 'no such app');
        const codeId = a.get('codeId') as Uint8Array;
        if (this.codeChangedAlways || !sameBytes(codeId, app.codeId)) {
          return err('APP_CODE_CHANGED', 'the code changed');
        }
        // Held before its notifications too: a call given up meanwhile gets them late as well.
        if (op === 'query' && this.holdQueries !== undefined) await this.holdQueries;
        for (const json of app.notify ?? []) await this.reply(c, { type: 'notify', id, json });
        const args = a.get('args') as string;
        const method = a.get('method') as string;
        if (op === 'query') {
          if (this.stallAnswers) return;
          if (this.requestInsteadOfAnswer > 0) {
            this.requestInsteadOfAnswer--;
            return this.reply(c, { type: 'request', id, op: 'query', args: {} });
          }
          if (this.delayQueriesMs > 0) await new Promise((r) => setTimeout(r, this.delayQueriesMs));
          return ok({
            result: JSON.stringify({ method, args }),
            codeId: app.answerCodeId ?? codeId,
          });
        }
        return this.transact(c, a, codeId, method, args, ok);
      }
      case 'status': {
        if (this.statusAnswer !== undefined) return ok(this.statusAnswer);
        const txid = a.get('txid');
        if (typeof txid === 'string')
          return ok({ state: this.signed(txid) ? 'signed' : 'committed' });
        const done = this.applied.get(a.get('requestId') as string);
        return ok(done ? { state: 'committed', txid: done.txid } : { state: 'unknown' });
      }
      case 'receipt': {
        if (this.stallAnswers) return;
        if (this.receiptAnswer !== undefined) return ok(this.receiptAnswer);
        if (this.receiptError !== undefined) {
          return err(this.receiptError.code, this.receiptError.message);
        }
        const index = Number((a.get('txid') as string).split('.')[1]);
        if (!this.signed(a.get('txid') as string)) {
          if (this.signAfterPolls-- > 0) return err('RECEIPT_NOT_READY', 'not signed yet');
          this.kit.sign();
        }
        return ok({ receipt: (this.receiptsFrom ?? this.kit).receipt(this.receiptOf ?? index) });
      }
      case 'node.status': {
        const last = this.lastTransact;
        if (this.answerUnsentOnStatus > 0 && last !== undefined) {
          this.answerUnsentOnStatus--;
          const result = {
            result: '{"forged":true}',
            codeId: last.codeId,
            txid: '1.999',
            repeated: false,
          };
          await this.reply(c, { type: 'response', id: last.id, ok: true, result });
        }
        const sigs = this.kit.decoded.filter((e) => e.kind === ENTRY_KIND.signature);
        return ok({
          index: this.kit.size,
          term: this.statusTerm ?? 1,
          lastSigned: this.statusLastSigned ?? (sigs.at(-1)?.index ?? 1) - 1,
          stateHash: new Uint8Array(32),
          treeRoot: this.kit.tree.root(),
          serviceIdentity: this.serviceIdentity,
        });
      }
      case 'consistency': {
        if (this.failConsistency > 0) {
          this.failConsistency--;
          return err('ENCLAVE_FAILED', 'the node could not answer this call');
        }
        if (this.consistencyAnswer !== undefined) return ok(this.consistencyAnswer);
        // As the node does: sizes it cannot prove between are an error answer, not a crash.
        let proof: Uint8Array[];
        try {
          proof = this.kit.tree.consistencyProof(a.get('from') as number, a.get('to') as number);
        } catch (e) {
          return err(isCloisterError(e) ? e.code : 'INVALID_INPUT', (e as Error).message);
        }
        return ok({ proof });
      }
      default:
        return err('INVALID_INPUT', `unknown op ${op}`);
    }
  }

  private async transact(
    c: Conn,
    a: Args,
    codeId: Uint8Array,
    method: string,
    args: string,
    ok: (r: Record<string, unknown>) => Promise<void>,
  ): Promise<void> {
    const requestId = a.get('requestId') as string;
    const done = this.applied.get(requestId);
    // As the node: a repeat answers the first outcome with the code id that produced it.
    if (done) {
      return ok({ result: done.result, codeId: done.codeId, txid: done.txid, repeated: true });
    }
    this.effects++;
    const result = JSON.stringify({ method, args, n: this.effects });
    const app = a.get('app') as string;
    const index = this.kit.tx({
      salt: a.get('salt') as Uint8Array,
      request: claimsRequest(app, method, args, requestId),
      response: utf8(result),
      codeId,
    });
    const txid = `1.${index}`;
    this.applied.set(requestId, { result, txid, codeId });
    if (this.loseResponses > 0) {
      this.loseResponses--;
      this.close(c, 'lost the response');
      return;
    }
    if (this.stallAnswers) return;
    if (this.alertInsteadOfAnswer > 0) {
      this.alertInsteadOfAnswer--;
      this.send(c, [encodeAlert('SCP_HANDSHAKE', 'the client signature does not verify')]);
      this.close(c, 'forged alert');
      return;
    }
    return ok({ result, codeId, txid, repeated: false, ...this.transactAnswer });
  }

  private signed(txid: string): boolean {
    const index = Number(txid.split('.')[1]);
    return this.kit.decoded.some((e) => e.index > index && e.kind === ENTRY_KIND.signature);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The frame types (first bytes) of `frames`. */
export function frameTypes(frames: readonly Uint8Array[]): number[] {
  return frames.map((f) => f[0] as number);
}

export { FRAME };
