import { randomBytes } from 'node:crypto';
import { RecordPurpose, createLedgerKeyring } from './packages/enclave/src/ledger/crypto.js';
const kr = createLedgerKeyring({ origin: { generation: 0, secret: randomBytes(32) } });
const recs = Array.from({ length: 2000 }, () => ({ hash: randomBytes(32), plaintext: randomBytes(Number(process.argv[2] ?? 1200)) }));
for (let round = 0; round < 5; round++) {
  const t0 = performance.now();
  for (const r of recs) { kr.storeKey(r.hash); kr.seal(RecordPurpose.node, r.hash, r.plaintext); }
  const t1 = performance.now();
  for (const r of recs) kr.storeKey(r.hash);
  const t2 = performance.now();
  console.log('seal+key per record us', ((t1 - t0) * 1000 / 2000).toFixed(2), 'key only', ((t2 - t1) * 1000 / 2000).toFixed(2));
}
