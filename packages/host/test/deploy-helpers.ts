/** Deploying an app to a running test node the way `cloister app deploy` does. */
import assert from 'node:assert/strict';
import type { RunningNode } from '../src/node/node.js';
import {
  encodeDeployBody,
  loadOrCreateOperatorKey,
  signDeployRequest,
} from '../src/node/operator.js';

/**
 * A first deploy of `module` as `app` (POST /v1/apps, signed by the operator key in
 * `operatorPem`): the node's answer, unchecked, and the code id it was signed for.
 */
export async function postDeploy(
  node: RunningNode,
  operatorPem: string,
  app: string,
  module: Uint8Array,
): Promise<{ res: Response; codeId: Uint8Array }> {
  const signed = signDeployRequest(loadOrCreateOperatorKey(operatorPem).privateKey, {
    app,
    module,
    upgrade: false,
    prev: new Uint8Array(0),
    prevIndex: 0,
    service: node.serviceIdentity,
  });
  const res = await fetch(`${node.url}/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/cbor' },
    body: encodeDeployBody(signed.request, module),
  });
  return { res, codeId: signed.codeId };
}

/** postDeploy that asserts 201; returns the transaction id and the code id. */
export async function deployApp(
  node: RunningNode,
  operatorPem: string,
  app: string,
  module: Uint8Array,
): Promise<{ txid: string; codeId: Uint8Array }> {
  const { res, codeId } = await postDeploy(node, operatorPem, app, module);
  assert.equal(res.status, 201, await res.clone().text());
  return { txid: ((await res.json()) as { txid: string }).txid, codeId };
}
