/**
 * The documented JSON error as a whole HTTP/1.1 answer, for a socket no ServerResponse owns: a
 * request Node's parser refused, a CONNECT, a socket over the caps, a WebSocket upgrade refused.
 * Every answer of the node is this JSON (docs/node-api.md "Errors"); these ones are written
 * straight to the socket, always with `Connection: close`.
 */
import { STATUS_CODES } from 'node:http';
import { ERROR_CODES } from '@cloister/core';

export function rawErrorAnswer(
  status: number,
  code: string,
  message: string,
  headers: Readonly<Record<string, string>> = {},
): string {
  const hint = Object.hasOwn(ERROR_CODES, code)
    ? ERROR_CODES[code as keyof typeof ERROR_CODES]
    : '';
  const body = `${JSON.stringify({ error: { code, message, hint } })}\n`;
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${extra}` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: close\r\n\r\n${body}`
  );
}
