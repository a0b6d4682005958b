/**
 * The five example apps end to end: a real node (the enclave built from source, its SCP server
 * behind the host's relay), the apps deployed by the operator with `cloister app deploy`'s code,
 * and every call made through @cloister/client over the secure connection protocol, by clients
 * that pin each app's code id (`APP:<name>=<code id>`) and pad their records. One scenario per
 * app, with the attack its README rules out; the in-sandbox tests (examples/<app>/test) cover
 * the rest.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Client,
  connect,
  generateIdentity,
  type Socket,
  type Transport,
  wsTransport,
} from '@cloister/client/node';
import { toHex } from '@cloister/core';
import { createLogger, loadOrCreateOperatorKey, type RunningNode, startNode } from '@cloister/host';
import { deployApp } from '../../packages/cli/src/commands/app-deploy.js';
import { testBuild } from '../../packages/host/test/helpers.js';
import { buildExample, EXAMPLES } from '../lib/load.js';
import {
  birthDateCredential,
  mintAuthorization,
  newIssuer,
  salaryCredential,
  testIssuer,
  voterCredential,
} from '../tools/credentials.js';

const tmp = mkdtempSync(join(tmpdir(), 'cloister-examples-e2e-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** An app error as the client sees it: APP_ERROR, the app's code in the message. */
function appError(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    const err = e as { code?: string; message?: string };
    assert.equal(err.code, 'APP_ERROR');
    assert.match(err.message ?? '', new RegExp(`${code}`));
    return true;
  };
}

describe('the example apps over the secure connection protocol', () => {
  const home = join(tmp, 'home');
  let node: RunningNode | undefined;
  let constraint: string;
  let measurement: string;
  const clients: Client[] = [];

  /** A new person: a fresh identity, so a fresh caller id in every app. */
  async function person(): Promise<Client> {
    const c = await connect(node!.url, {
      constraint,
      identity: await generateIdentity(),
      padding: true,
    });
    clients.push(c);
    return c;
  }

  before(async () => {
    const build = await testBuild();
    node = await startNode({
      dataDir: join(tmp, 'data'),
      platformDir: join(tmp, 'platform'),
      enclaveDir: build.outDir,
      port: 0,
      logger: createLogger({ level: 'silent' }),
      signIntervalMs: 50,
      operatorPublicKey: loadOrCreateOperatorKey(join(home, 'operator.pem')).publicKey,
    });
    const pins: string[] = [];
    for (const name of EXAMPLES) {
      const built = await buildExample(name);
      const deployed = await deployApp(built.wasmPath, { name, node: node.url, home });
      assert.equal(deployed.codeId, built.codeId);
      pins.push(`APP:${name}=${built.codeId}`);
    }
    measurement = toHex(build.measurement);
    constraint = `C:${measurement} SEC:INSECURE ${pins.join(' ')}`;
  });
  after(async () => {
    for (const c of clients) await c.close();
    await node?.close();
  });

  it('a client pinning other code for an app sends it nothing', async () => {
    const wrong = `C:${measurement} SEC:INSECURE APP:token=${'00'.repeat(32)}`;
    const c = await connect(node!.url, { constraint: wrong, identity: await generateIdentity() });
    clients.push(c);
    await assert.rejects(c.app('token').query('whoami', {}), { code: 'APP_CODE_MISMATCH' });
  });

  it('token: mint by the issuer only, a retried transfer applied once, balances private', async () => {
    const [alice, bob, mallory] = [await person(), await person(), await person()];
    const id = async (c: Client) =>
      ((await c.app('token').query('whoami', {})).result as { callerId: string }).callerId;
    const [a, b] = [await id(alice), await id(bob)];
    await mallory.app('token').transact('mint', mintAuthorization(testIssuer(), a, 100));
    await assert.rejects(
      mallory.app('token').transact('mint', mintAuthorization(newIssuer(), await id(mallory), 100)),
      appError('bad_signature'),
    );
    const first = await alice
      .app('token')
      .transact('transfer', { to: b, amount: 30 }, { requestId: 'pay-1' });
    const retry = await alice
      .app('token')
      .transact('transfer', { to: b, amount: 30 }, { requestId: 'pay-1' });
    assert.equal(first.repeated, false);
    assert.equal(retry.repeated, true);
    const balance = async (c: Client) => (await c.app('token').query('balance', {})).result;
    assert.deepEqual(await balance(alice), { balance: 70 });
    assert.deepEqual(await balance(bob), { balance: 30 });
    assert.deepEqual(await balance(mallory), { balance: 0 });
  });

  it('auction: only the seller closes; only winner and price come out', async () => {
    const [seller, x, y, operator] = [
      await person(),
      await person(),
      await person(),
      await person(),
    ];
    await seller.app('auction').transact('open', { auction: 'e2e', item: 'a vase' });
    await x.app('auction').transact('bid', { auction: 'e2e', amount: 40 });
    await y.app('auction').transact('bid', { auction: 'e2e', amount: 55 });
    await assert.rejects(
      operator.app('auction').transact('close', { auction: 'e2e' }),
      appError('not_seller'),
    );
    const closed = (await seller.app('auction').transact('close', { auction: 'e2e' })).result as {
      winner: string;
      price: number;
    };
    assert.equal(closed.price, 55);
    assert.deepEqual((await x.app('auction').query('myBid', { auction: 'e2e' })).result, {
      amount: null,
    });
    assert.deepEqual(Object.keys(closed), ['item', 'seller', 'open', 'winner', 'price']);
    assert.ok(!Object.values(closed).includes(40));
  });

  it('poll: one vote per credential, totals only after the close', async () => {
    const issuer = newIssuer();
    const [creator, v1, v2] = [await person(), await person(), await person()];
    const poll = {
      poll: 'e2e',
      question: 'Go?',
      options: ['yes', 'no'],
      issuer: issuer.publicKeyHex,
    };
    await creator.app('poll').transact('create', poll);
    const c1 = voterCredential(issuer);
    await v1.app('poll').transact('vote', { poll: 'e2e', option: 0, ...c1 });
    await v2.app('poll').transact('vote', { poll: 'e2e', option: 1, ...voterCredential(issuer) });
    await assert.rejects(
      v2.app('poll').transact('vote', { poll: 'e2e', option: 1, ...c1 }),
      appError('already_voted'),
    );
    await assert.rejects(v1.app('poll').query('results', { poll: 'e2e' }), appError('poll_open'));
    const r = (await creator.app('poll').transact('close', { poll: 'e2e' })).result as {
      totals: number[];
    };
    assert.deepEqual(r.totals, [1, 1]);
  });

  it('salary-benchmark: nothing while open, aggregates over k at the close', async () => {
    const issuer = testIssuer();
    const owner = await person();
    await owner.app('salary-benchmark').transact('open', { round: 'e2e', k: 5 });
    const seen = new Set<string>();
    for (const s of [40, 50, 60, 70, 80]) {
      const c = await person();
      await c
        .app('salary-benchmark')
        .transact('contribute', { round: 'e2e', ...salaryCredential(issuer, s * 1000) });
      seen.add((await c.app('salary-benchmark').query('round', { round: 'e2e' })).json);
    }
    assert.equal(seen.size, 1);
    const r = (await owner.app('salary-benchmark').transact('close', { round: 'e2e' })).result as {
      result: unknown;
    };
    assert.deepEqual(r.result, { released: true, count: 5, mean: 60_000, median: 60_000 });
  });

  it('age-check: a claim signed by the app key, verified offline', async () => {
    const [operator, holder] = [await person(), await person()];
    const { publicKey } = (await operator.app('age-check').transact('init', {})).result as {
      publicKey: string;
    };
    const r = (
      await holder.app('age-check').query('check', {
        ...birthDateCredential(testIssuer(), '1990-01-01'),
        asOf: '2020-01-01',
        challenge: 'ab',
      })
    ).result as { claim: string; signature: string };
    const key = await crypto.subtle.importKey(
      'raw',
      Buffer.from(publicKey, 'hex'),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['verify'],
    );
    const ok = await crypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' },
      key,
      Buffer.from(r.signature, 'hex'),
      new TextEncoder().encode(r.claim),
    );
    assert.equal(ok, true);
    assert.ok(!r.claim.includes('1990'));
  });

  it('age-check: the host cannot tell a claim from a refusal by size (padding on)', async () => {
    // What the relay sees: the sizes of the frames the node sends this client.
    const sizes: number[] = [];
    const seen: Transport = async (url) => {
      const s = await wsTransport()(url);
      let deliver = s.onmessage;
      Object.defineProperty(s, 'onmessage', {
        get: () => deliver,
        set: (f: Socket['onmessage']) => {
          deliver =
            f === undefined
              ? undefined
              : (frame) => {
                  sizes.push(frame.length);
                  f(frame);
                };
        },
      });
      return s;
    };
    const c = await connect(node!.url, {
      constraint,
      identity: await generateIdentity(),
      padding: true,
      transport: seen,
    });
    clients.push(c);
    await c.app('age-check').transact('init', {}); // the claim key (idempotent)
    const answer = async (birthDate: string, challenge: string): Promise<number> => {
      sizes.length = 0;
      const call = c.app('age-check').query('check', {
        ...birthDateCredential(testIssuer(), birthDate),
        asOf: '2020-01-01',
        challenge,
      });
      if (birthDate < '2002-01-01') assert.ok(((await call).result as { claim: string }).claim);
      else await assert.rejects(call, appError('not_over_18'));
      return sizes.at(-1) as number;
    };
    for (const challenge of ['', 'ab'.repeat(32)]) {
      const adult = await answer('1990-01-01', challenge);
      const minor = await answer('2010-01-01', challenge);
      assert.equal(minor, adult, `challenge of ${challenge.length} digits`);
    }
  });
});
