/**
 * The typed call layer over a Port (enclave side) or a HostPort (host side).
 *
 * Every call gets exactly one answer: its response, or the generic error reply. A handler that
 * throws a CloisterError answers with its code and message; any other failure answers with code
 * BOUNDARY and a generic message, so no stack or data crosses. Frames that cannot be attributed
 * (bad header, replies to nothing, duplicate replies) are reported to `onProtocolError` and
 * dropped; the endpoint keeps serving. A request whose header is readable but whose body is not
 * is answered with a BOUNDARY error reply, so its caller is never left waiting.
 */
import { CloisterError } from '@cloister/core';
import {
  type CallName,
  type CallRequest,
  type CallResponse,
  type EnclaveToHostCall,
  ERROR_KIND,
  type ErrorReply,
  type EventFields,
  type EventName,
  type HostToEnclaveCall,
  MESSAGES,
  RESPONSE_BIT,
} from './catalogue.js';
import { type Codec, createCodec, type Frame, type Side, type Values } from './codec.js';
import { BoundaryError, isErrorCode, RemoteError } from './errors.js';
import type { HostPort, Port } from './port.js';

type Handler<N extends CallName> = (
  req: CallRequest<N>,
) => CallResponse<N> | Promise<CallResponse<N>>;

/** Handlers for the calls the host makes; a missing one answers with a BOUNDARY error reply. */
export type EnclaveHandlers = { readonly [N in HostToEnclaveCall]?: Handler<N> };
/** Handlers for the calls the enclave makes (async or sync); a missing one answers BOUNDARY. */
export type HostCallHandlers = { readonly [N in EnclaveToHostCall]?: Handler<N> };
/** Handlers for the events the enclave emits. */
export type HostEventHandlers = { readonly [N in EventName]?: (fields: EventFields<N>) => void };
export type HostHandlers = HostCallHandlers & HostEventHandlers;

export interface RpcOptions {
  /** Largest frame accepted or sent (default 64 MiB). */
  readonly maxLength?: number;
  /** Told about every frame dropped as malformed or unexpected. The endpoint keeps working. */
  readonly onProtocolError?: (error: BoundaryError) => void;
}

/** The enclave's view of the boundary. */
export interface EnclaveRpc {
  /** Calls the host; settles when the reply arrives (rejects with RemoteError/BoundaryError). */
  call<N extends EnclaveToHostCall>(name: N, req: CallRequest<N>): Promise<CallResponse<N>>;
  /** Calls the host and blocks this thread until it answers; throws RemoteError/BoundaryError. */
  callSync<N extends EnclaveToHostCall>(name: N, req: CallRequest<N>): CallResponse<N>;
  /** Sends an event. `log` takes a pino level (10..60) and a fixed event name, never data. */
  emit<N extends EventName>(name: N, fields: EventFields<N>): void;
}

/** The host's view of the boundary. */
export interface HostRpc {
  /** Calls the enclave; settles when the reply arrives (rejects with RemoteError/BoundaryError). */
  call<N extends HostToEnclaveCall>(name: N, req: CallRequest<N>): Promise<CallResponse<N>>;
  /** Rejects every pending call with `error`, and every later one; later frames are ignored. */
  close(error: Error): void;
}

const MAX_ID = 0xffff_ffff;
const LOG_LEVELS: ReadonlySet<number> = new Set([10, 20, 30, 40, 50, 60]);
const EVENT_NAME = /^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$/;
const GENERIC: ErrorReply = { code: 'BOUNDARY', message: 'the handler failed' };

/** Checks an event's fields beyond their types; returns what is wrong, or undefined. */
export function checkEvent(name: EventName, fields: Values): string | undefined {
  if (name !== 'log') return undefined;
  if (!LOG_LEVELS.has(fields.level as number)) return 'log level must be one of 10..60 (pino)';
  const e = fields.event as string;
  if (e.length > 64 || !EVENT_NAME.test(e)) return 'log event must be a fixed event name';
  return undefined;
}

interface Pending {
  readonly name: CallName;
  readonly resolve: (v: Values) => void;
  readonly reject: (e: Error) => void;
}

type AnyHandlers = Readonly<Record<string, ((v: Values) => unknown) | undefined>>;

/** The machinery both sides share: ids, pending calls, serving requests, settling replies. */
class Endpoint {
  readonly codec: Codec;
  private readonly side: Side;
  private readonly send: (bytes: Uint8Array) => void;
  private readonly handlers: AnyHandlers;
  private readonly report: (e: BoundaryError) => void;
  private readonly pending = new Map<number, Pending>();
  // Invariant: nextId is in 1..MAX_ID and no pending call has the id newId() returns.
  private nextId = 1;
  private closed: Error | undefined;

  constructor(
    side: Side,
    send: (bytes: Uint8Array) => void,
    handlers: AnyHandlers,
    report: (e: BoundaryError) => void,
    options: RpcOptions,
  ) {
    this.side = side;
    this.send = send;
    this.handlers = handlers;
    this.report = report;
    this.codec = createCodec(options);
  }

  newId(): number {
    let id = this.nextId;
    while (this.pending.has(id)) id = id === MAX_ID ? 1 : id + 1;
    this.nextId = id === MAX_ID ? 1 : id + 1;
    return id;
  }

  call(name: CallName, req: Values): Promise<Values> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.newId();
    let bytes: Uint8Array;
    try {
      bytes = this.codec.encodeRequest(name, id, req as never);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { name, resolve, reject });
      this.send(bytes);
    });
  }

  close(error: Error): void {
    this.closed ??= error;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(error);
  }

  /** Handles one asynchronous frame. Never throws on bad input. */
  receive(bytes: Uint8Array): void {
    if (this.closed) return;
    let frame: Frame;
    try {
      frame = this.codec.decode(bytes, this.side);
    } catch (e) {
      this.badFrame(e, this.send);
      return;
    }
    if (frame.type === 'request') this.serve(frame.name, frame.id, frame.fields, this.send);
    else if (frame.type === 'event') this.event(frame.name, frame.fields);
    else this.settle(frame);
  }

  /** Handles one synchronous request (host side); `reply` is called exactly once. */
  receiveSync(bytes: Uint8Array, reply: (bytes: Uint8Array) => void): void {
    let frame: Frame;
    try {
      frame = this.codec.decode(bytes, this.side);
    } catch (e) {
      const err = this.badFrame(e, undefined);
      const h = err.header;
      reply(this.error(h !== undefined && h.kind < RESPONSE_BIT ? h.id : 0, err));
      return;
    }
    if (frame.type === 'request') {
      this.serve(frame.name, frame.id, frame.fields, reply);
      return;
    }
    const err = new BoundaryError(`a ${frame.type} frame arrived as a synchronous call`);
    this.report(err);
    reply(this.error(frame.id, err));
  }

  /**
   * Reports a frame that did not decode. On the asynchronous path (`reply` given) it answers a
   * readable request, and fails the pending call a readable but malformed reply was meant for.
   */
  private badFrame(e: unknown, reply: ((bytes: Uint8Array) => void) | undefined): BoundaryError {
    const err = e instanceof BoundaryError ? e : new BoundaryError('the frame did not decode');
    const h = err.header;
    if (reply !== undefined && h !== undefined && h.kind < RESPONSE_BIT && h.id !== 0) {
      reply(this.error(h.id, err));
    }
    if (reply !== undefined && h !== undefined && h.kind >= RESPONSE_BIT) {
      const p = this.pending.get(h.id);
      if (p && (h.kind === ERROR_KIND || h.kind === (MESSAGES[p.name].kind | RESPONSE_BIT))) {
        this.pending.delete(h.id);
        p.reject(err);
      }
    }
    this.report(err);
    return err;
  }

  private serve(name: CallName, id: number, req: Values, reply: (b: Uint8Array) => void): void {
    const handler = this.handlers[name];
    if (handler === undefined) {
      reply(this.error(id, new BoundaryError(`${name} is not handled`)));
      return;
    }
    let result: unknown;
    try {
      result = handler(req);
    } catch (e) {
      reply(this.error(id, e));
      return;
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      (result as PromiseLike<Values>).then(
        (r) => reply(this.response(name, id, r)),
        (e: unknown) => reply(this.error(id, e)),
      );
    } else {
      reply(this.response(name, id, result as Values));
    }
  }

  private response(name: CallName, id: number, res: Values): Uint8Array {
    try {
      return this.codec.encodeResponse(name, id, res as never);
    } catch (e) {
      return this.error(id, e);
    }
  }

  /** The error reply for `e`: a CloisterError keeps code and message; anything else is generic. */
  error(id: number, e: unknown): Uint8Array {
    const reply = e instanceof CloisterError ? { code: e.code, message: e.message } : GENERIC;
    try {
      return this.codec.encodeError(id, reply);
    } catch {
      return this.codec.encodeError(id, GENERIC);
    }
  }

  private event(name: EventName, fields: Values): void {
    const wrong = checkEvent(name, fields);
    if (wrong !== undefined) this.report(new BoundaryError(wrong));
    else this.handlers[name]?.(fields);
  }

  private settle(frame: Extract<Frame, { type: 'response' | 'error' }>): void {
    const p = this.pending.get(frame.id);
    if (p === undefined) {
      this.report(new BoundaryError(`a reply to call id ${frame.id}, which is not pending`));
      return;
    }
    this.pending.delete(frame.id);
    if (frame.type === 'response' && frame.name !== p.name) {
      const err = new BoundaryError(`a ${frame.name} reply to a ${p.name} call`);
      this.report(err);
      p.reject(err);
    } else if (frame.type === 'error') {
      p.reject(remoteError(p.name, frame.fields));
    } else {
      p.resolve(frame.fields);
    }
  }

  /** Decodes the reply to synchronous call `id` (enclave side). */
  syncReply(name: CallName, id: number, bytes: Uint8Array): Values {
    const frame = this.codec.decode(bytes, this.side);
    if (frame.id !== id) throw new BoundaryError(`sync reply for call id ${frame.id}, not ${id}`);
    if (frame.type === 'error') throw remoteError(name, frame.fields);
    if (frame.type !== 'response' || frame.name !== name) {
      throw new BoundaryError(`a ${frame.type} frame answered the synchronous ${name} call`);
    }
    return frame.fields;
  }
}

function remoteError(name: CallName, reply: ErrorReply): CloisterError {
  if (!isErrorCode(reply.code)) return new BoundaryError(`${name} failed with an unknown code`);
  return new RemoteError(name, reply.code, reply.message);
}

/**
 * The enclave side. `port` is the shim's; `handlers` answer host calls (async allowed). A
 * malformed frame from the host is dropped after a `log` warning `boundary.malformed`
 * (override with `onProtocolError`).
 */
export function createEnclaveRpc(
  port: Port,
  handlers: EnclaveHandlers,
  options: RpcOptions = {},
): EnclaveRpc {
  const rpc: EnclaveRpc = {
    call: (name, req) => ep.call(name, req) as never,
    callSync: (name, req) => {
      const id = ep.newId();
      const bytes = ep.codec.encodeRequest(name, id, req);
      return ep.syncReply(name, id, port.callSync(bytes)) as never;
    },
    emit: (name, fields) => {
      const wrong = checkEvent(name, fields);
      if (wrong !== undefined) throw new BoundaryError(wrong);
      port.post(ep.codec.encodeEvent(name, fields));
    },
  };
  const report =
    options.onProtocolError ??
    ((): void => {
      try {
        rpc.emit('log', { level: 40, event: 'boundary.malformed' });
      } catch {
        // Nothing more to do: the frame is dropped either way.
      }
    });
  const send = (b: Uint8Array): void => port.post(b);
  const ep = new Endpoint('enclave', send, handlers as AnyHandlers, report, options);
  port.onMessage((bytes) => ep.receive(bytes));
  return rpc;
}

/** The host side. `handlers` answer enclave calls (async or sync alike) and events. */
export function createHostRpc(
  port: HostPort,
  handlers: HostHandlers,
  options: RpcOptions = {},
): HostRpc {
  const report = options.onProtocolError ?? ((): void => {});
  const send = (b: Uint8Array): void => port.post(b);
  const ep = new Endpoint('host', send, handlers as AnyHandlers, report, options);
  port.onMessage((bytes) => ep.receive(bytes));
  port.onSyncCall((bytes, reply) => ep.receiveSync(bytes, reply));
  return {
    call: (name, req) => ep.call(name, req) as never,
    close: (error) => ep.close(error),
  };
}
