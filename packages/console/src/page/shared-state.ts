/**
 * The page's ClientState kept by the console's own server in the Cloister home (the file the CLI
 * uses), through same-origin requests to `/state/*` (server.ts `serveState`): pins and signed
 * roots outlive this browser origin (a console on another port, another browser) and are one
 * with `cloister call`'s. A refused compare-and-set comes back as CLIENT_STATE_LOCKED.
 */
import type { ClientState } from '@cloister/client/browser';
import { CloisterError, fromHex, StateLockedError, toHex } from '@cloister/core';

async function answer(r: Response): Promise<Record<string, unknown>> {
  const body = (await r.json().catch(() => ({}))) as Record<string, unknown>;
  if (r.ok) return body;
  const e = body.error as { code?: unknown; message?: unknown } | undefined;
  const message = `the console could not keep its state: ${String(e?.message ?? `HTTP ${r.status}`)}`;
  if (e?.code === 'CLIENT_STATE_LOCKED') throw new StateLockedError(message);
  throw new CloisterError('INVALID_INPUT', message);
}

const post = (path: string, v: unknown) =>
  fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(v),
  }).then(answer);

export function sharedState(): ClientState {
  return {
    pins: {
      async get(url) {
        const b = await answer(await fetch(`/state/pin?url=${encodeURIComponent(url)}`));
        return typeof b.pin === 'string' ? fromHex(b.pin) : undefined;
      },
      async put(url, serviceIdentity, previous) {
        await post('/state/pin', {
          url,
          pin: toHex(serviceIdentity),
          ...(previous === undefined
            ? {}
            : { previous: previous === null ? null : toHex(previous) }),
        });
      },
    },
    roots: {
      async get(service) {
        const b = await answer(await fetch(`/state/root?service=${toHex(service)}`));
        return typeof b.size === 'number' && typeof b.root === 'string'
          ? { service: service.slice(), size: b.size, root: fromHex(b.root) }
          : undefined;
      },
      async put(r, previous) {
        await post('/state/root', {
          service: toHex(r.service),
          size: r.size,
          root: toHex(r.root),
          ...(previous === undefined
            ? {}
            : {
                previous:
                  previous === null ? null : { size: previous.size, root: toHex(previous.root) },
              }),
        });
      },
    },
  };
}
