/// <reference types="node" />
/**
 * The fixed byte vectors of docs/ledger-format.md, computed by the enclave's code from the inputs
 * the document states. ledger-vectors.test.ts checks the document against this; the core's
 * verifier test checks its own reading of the same vectors.
 */
import { readFileSync } from 'node:fs';
import { createLedgerKeyring, hkdfSha256, LABELS, RecordPurpose } from '../src/ledger/crypto.js';
import { ADMIN_TRIE, CATALOGUE_TRIE } from '../src/ledger/ledger/format.js';
import { EMPTY_ROOT, makeBranch, makeLeaf, RADIX_16 } from '../src/ledger/trie/node.js';
import { storedForm } from '../src/ledger/trie/stored.js';
import { createTrie, type TrieOp } from '../src/ledger/trie/trie.js';
import { hex, memorySource } from './ledger-helpers.js';

const enc = new TextEncoder();
const label = (name: string, param?: string): Uint8Array =>
  param === undefined
    ? enc.encode(name)
    : Uint8Array.of(...enc.encode(name), 0, ...enc.encode(param));

export function computeVectors(): Map<string, string> {
  const v = new Map<string, string>();
  const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
  const kr = createLedgerKeyring({
    origin: { generation: 0, secret },
    random: (out) => out.fill(0),
  });
  v.set('secret', hex(secret));
  v.set(
    'hkdf.record-key.0',
    hex(
      hkdfSha256(
        secret,
        new Uint8Array(0),
        Uint8Array.of(...label(LABELS.recordKey), 0, 0, 0, 0, 0),
        32,
      ),
    ),
  );
  v.set('hkdf.store-key', hex(hkdfSha256(secret, new Uint8Array(0), label(LABELS.storeKey), 32)));
  v.set(
    'hkdf.table-path.accounts',
    hex(hkdfSha256(secret, new Uint8Array(0), label(LABELS.tablePath, 'accounts'), 32)),
  );
  v.set(
    'hkdf.table-salt.accounts',
    hex(hkdfSha256(secret, new Uint8Array(0), label(LABELS.tableSalt, 'accounts'), 32)),
  );

  const t = kr.table('accounts');
  const entries: [string, string][] = [
    ['alice', '100'],
    ['bob', '250'],
    ['carol', '75'],
  ];
  const ops: TrieOp[] = entries.map(([k, val]) => {
    const key = enc.encode(k);
    return { type: 'put', path: t.path(key), salt: t.salt(key), key, value: enc.encode(val) };
  });
  const a = ops[0] as Extract<TrieOp, { type: 'put' }>;
  const leaf = makeLeaf(a.path, a.salt, a.key, a.value);
  v.set('alice.path', hex(a.path));
  v.set('alice.salt', hex(a.salt));
  v.set('alice.key-commitment', hex(leaf.keyCommitment));
  v.set('alice.value-commitment', hex(leaf.valueCommitment));
  v.set('alice.leaf', hex(leaf.encoding));
  v.set('alice.leaf-hash', hex(leaf.hash));
  v.set('bob.path', hex((ops[1] as TrieOp).path));
  v.set('carol.path', hex((ops[2] as TrieOp).path));

  const source = memorySource();
  const trie = createTrie({ source });
  const u = trie.update(EMPTY_ROOT, ops);
  source.write(u);
  v.set('root', hex(u.root));
  v.set('root.stored', hex(source.records.get(hex(u.root)) as Uint8Array));
  v.set('root.store-key', hex(kr.storeKey(u.root)));
  v.set(
    'root.record',
    hex(kr.seal(RecordPurpose.node, u.root, source.records.get(hex(u.root)) as Uint8Array)),
  );
  // A record under a later generation (7, secret 20 21 … 3f): its header and its additional data
  // both carry the generation, which generation 0's all-zero bytes cannot show.
  const secret7 = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i);
  const kr7 = createLedgerKeyring({
    origin: { generation: 0, secret },
    secrets: [{ generation: 7, secret: secret7 }],
    random: (out) => out.fill(0),
  });
  v.set(
    'hkdf.record-key.7',
    hex(
      hkdfSha256(
        secret7,
        new Uint8Array(0),
        Uint8Array.of(...label(LABELS.recordKey), 0, 0, 0, 0, 7),
        32,
      ),
    ),
  );
  v.set('alice.record.gen-7', hex(kr7.seal(RecordPurpose.node, leaf.hash, leaf.encoding)));
  v.set('alice.proof', hex(trie.prove(u.root, a.path)));
  const dave = t.path(enc.encode('dave'));
  v.set('dave.path', hex(dave));
  v.set('dave.proof', hex(trie.prove(u.root, dave)));
  v.set('empty.dave.proof', hex(trie.prove(EMPTY_ROOT, dave)));

  // A branch at an odd depth: paths abc0… and abc8… split on digit 3.
  const p1 = new Uint8Array(32);
  p1.set([0xab, 0xc0]);
  const p2 = new Uint8Array(32);
  p2.set([0xab, 0xc8]);
  const salt = new Uint8Array(32).fill(0x11);
  const l1 = makeLeaf(p1, salt, enc.encode('x1'), enc.encode('1'));
  const l2 = makeLeaf(p2, salt, enc.encode('x2'), enc.encode('2'));
  const slots = new Array(16).fill(undefined);
  slots[0] = l1;
  slots[8] = l2;
  const odd = makeBranch(RADIX_16, 3, p1, slots, 512);
  v.set('odd.leaf-0', hex(l1.encoding));
  v.set('odd.leaf-8', hex(l2.encoding));
  v.set('odd.branch', hex(odd.encoding));
  v.set('odd.branch-hash', hex(odd.hash));
  v.set('odd.stored', hex(storedForm(odd)));

  // Section 11.1's derivations for 11.9's inputs (engine secret 07 × 32, ledger app1): each step
  // of a state proof's paths on its own, so a second implementation can find which one differs.
  const engine = new Uint8Array(32).fill(7);
  const admin = createLedgerKeyring({ origin: { generation: 0, secret: engine } });
  const app1Secret = hkdfSha256(
    engine,
    new Uint8Array(0),
    Uint8Array.of(...enc.encode('cloister/ledger/v1/app-ledger'), 0, ...enc.encode('app1')),
    32,
  );
  const app1 = createLedgerKeyring({ origin: { generation: 0, secret: app1Secret } });
  const app1Id = enc.encode('app1');
  const accounts = enc.encode('accounts');
  const alice = enc.encode('alice');
  v.set('s11.engine-secret', hex(engine));
  v.set('s11.admin.path.app1', hex(admin.table(ADMIN_TRIE).path(app1Id)));
  v.set('s11.admin.salt.app1', hex(admin.table(ADMIN_TRIE).salt(app1Id)));
  v.set('s11.app-ledger-secret.app1', hex(app1Secret));
  v.set('s11.app1.catalogue.path.accounts', hex(app1.table(CATALOGUE_TRIE).path(accounts)));
  v.set('s11.app1.catalogue.salt.accounts', hex(app1.table(CATALOGUE_TRIE).salt(accounts)));
  v.set('s11.app1.accounts.path.alice', hex(app1.table('accounts').path(alice)));
  v.set('s11.app1.accounts.salt.alice', hex(app1.table('accounts').salt(alice)));
  return v;
}

/**
 * The vectors of docs/ledger-format.md's fenced blocks of kind `kind` (`vectors`, or
 * `state-proof-vectors` for section 11.9's proofs): `name: hex` lines, longer hex continued on the
 * lines after its name (a `(N bytes)` note after the name is ignored).
 */
export function documentVectors(kind = 'vectors'): Map<string, string> {
  const doc = readFileSync(new URL('../../../docs/ledger-format.md', import.meta.url), 'utf8');
  const out = new Map<string, string>();
  for (const block of doc.matchAll(new RegExp(`\`\`\`${kind}\n([\\s\\S]*?)\`\`\``, 'g'))) {
    let name = '';
    for (const line of (block[1] ?? '').split('\n')) {
      const m = /^([a-z0-9.-]+):\s*(?:\(\d+ bytes\))?\s*([0-9a-f]*)$/.exec(line.trim());
      if (m) {
        name = m[1] ?? '';
        out.set(name, m[2] ?? '');
      } else if (/^[0-9a-f]+$/.test(line.trim()) && name) {
        out.set(name, (out.get(name) ?? '') + line.trim());
      }
    }
  }
  return out;
}

if (process.argv[1]?.endsWith('ledger-vectors.ts')) {
  for (const [k, val] of computeVectors()) console.log(`${k}: ${val}`);
}
