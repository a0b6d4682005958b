/** Helpers shared by the codec tests. */
import { MESSAGES } from '../src/catalogue.js';
import type { Codec, Frame, Side } from '../src/codec.js';

export type FrameSpec = {
  readonly type: Frame['type'];
  readonly name: string;
  readonly id: number;
  readonly fields: Record<string, unknown>;
};

export function encode(c: Codec, v: FrameSpec): Uint8Array {
  const f = v.fields as never;
  if (v.type === 'request') return c.encodeRequest(v.name as never, v.id, f);
  if (v.type === 'response') return c.encodeResponse(v.name as never, v.id, f);
  if (v.type === 'event') return c.encodeEvent(v.name as never, f);
  return c.encodeError(v.id, f);
}

/** The side that receives a frame kind. */
export function receiver(type: Frame['type'], name: string): Side {
  if (type === 'error') return 'enclave';
  const spec = MESSAGES[name as keyof typeof MESSAGES];
  const toEnclave = spec.direction === 'host->enclave';
  return (type === 'response') === toEnclave ? 'host' : 'enclave';
}

export function decodeAgain(c: Codec, bytes: Uint8Array, side: Side): Uint8Array {
  const f = c.decode(bytes, side);
  return encode(c, {
    type: f.type,
    name: 'name' in f ? f.name : 'error',
    id: f.id,
    fields: f.fields,
  });
}
