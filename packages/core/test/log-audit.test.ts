/**
 * auditLog (src/log/audit.ts): a good log passes and says what it verified; each tampering of the
 * stored log is its own named error naming the first bad entry.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toHex } from '../src/bytes.js';
import { decodeSign1 } from '../src/cose.js';
import type { CloisterError } from '../src/errors.js';
import { auditLog } from '../src/log/audit.js';
import {
  LogEntryAlteredError,
  LogEntryMissingError,
  LogEntryReorderedError,
  LogGenesisConstraintError,
  LogSignatureError,
  LogTailCutError,
  RollbackDetectedError,
} from '../src/log/errors.js';
import { encodeEntry, entryHash, type LogEntry } from '../src/log/format.js';
import { serviceIdentity } from '../src/log/payloads.js';
import {
  CONSTRAINT,
  KitService,
  makeClaims,
  p256Key,
  SECURE_CONSTRAINT,
  sign1,
  withUnprotected,
} from './log-kit.js';

/** genesis 1, sig 2, tx 3..7, sig 8, tx 9..10, sig 11, tx 12 (unsigned tail). */
function build(): KitService {
  const s = new KitService();
  for (let i = 0; i < 5; i++) s.tx(makeClaims(i));
  s.sign();
  s.tx(makeClaims(9));
  s.tx();
  s.sign();
  s.tx(makeClaims(12));
  return s;
}

async function fails(
  entries: Iterable<Uint8Array>,
  cls: new (...a: never[]) => CloisterError,
  index: number | undefined,
  message?: RegExp,
  options = {},
): Promise<void> {
  await assert.rejects(auditLog(entries, options), (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    if (index !== undefined)
      assert.equal((e as unknown as { index: number }).index, index, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function alter(entries: Uint8Array[], index: number, at: number): Uint8Array[] {
  const out = entries.slice();
  const b = (out[index - 1] as Uint8Array).slice();
  const i = at < 0 ? b.length + at : at;
  b[i] = (b[i] as number) ^ 1;
  out[index - 1] = b;
  return out;
}

describe('auditLog', () => {
  test('a good log passes, from an array and from an async iterable', async () => {
    const s = build();
    const report = await auditLog(s.entries, { constraint: CONSTRAINT });
    assert.equal(report.entries, 12);
    assert.equal(report.signatures, 3);
    assert.equal(report.lastSigned, 10);
    assert.deepEqual(report.root, s.tree.root());
    assert.deepEqual(report.signedRoot, s.tree.root(10));
    assert.deepEqual(report.stateHash, s.stateHashes[10]);
    assert.deepEqual(report.service, serviceIdentity(s.service.publicKey));
    assert.ok(report.checked.some((c) => /satisfies the constraint/.test(c)));
    assert.ok(report.checked.some((c) => /entries 11\.\.12 are not covered/.test(c)));

    async function* stream() {
      for (const e of s.entries) yield e;
    }
    const again = await auditLog(stream(), { trusted: { size: 7, root: s.tree.root(7) } });
    assert.equal(again.entries, 12);
    assert.ok(again.checked.some((c) => /NOT checked against a constraint/.test(c)));
    assert.ok(again.checked.some((c) => /extends the trusted root of size 7/.test(c)));
  });

  test('rotations and write-set generations: honest ones pass, others are altered entries', async () => {
    const s = new KitService();
    s.tx();
    s.rotate(); // 1
    s.tx();
    s.rotate(4); // a generation persisted by a crash before its rotation committed is skipped
    s.tx();
    s.sign();
    assert.equal((await auditLog(s.entries)).entries, 8);
    const back = new KitService();
    back.rotate(2);
    back.rotate(2);
    await fails(
      back.entries,
      LogEntryAlteredError,
      4,
      /names secret generation 2, not one after 2/,
    );
    const stale = new KitService();
    stale.rotate();
    stale.tx(undefined, 0);
    await fails(stale.entries, LogEntryAlteredError, 4, /under secret generation 0, not 1/);
    const ahead = new KitService();
    ahead.tx(undefined, 1);
    await fails(ahead.entries, LogEntryAlteredError, 3, /under secret generation 1, not 0/);
  });

  test('genesis is signed at once, as the empty state: entry 2 is that signature', async () => {
    const alone = new KitService({ unsignedGenesis: true });
    await fails(alone.entries, LogEntryMissingError, 2, /a log of genesis alone/);
    const txFirst = new KitService({ unsignedGenesis: true });
    txFirst.tx();
    txFirst.sign();
    await fails(txFirst.entries, LogEntryAlteredError, 2, /entry 2 is not a signature entry/);
    const wrongState = new KitService({ unsignedGenesis: true });
    wrongState.sign(undefined, undefined, new Uint8Array(32).fill(1));
    await fails(wrongState.entries, LogSignatureError, 2, /other than the empty state/);
  });

  test('an entry of another term than 1 is refused, in the unsigned tail too', async () => {
    const s = build();
    const last = s.decoded[11] as LogEntry;
    const out = s.entries.slice();
    out[11] = encodeEntry({ ...last, term: 2 }); // entry 12: nothing chains to it, nothing signs it
    await fails(out, LogEntryAlteredError, 12, /entry 12 has term 2; every entry is of term 1/);
  });

  test('a second genesis entry is refused, in the unsigned tail too', async () => {
    const s = build();
    const out = s.entries.slice();
    // Entry 13: a copy of genesis chained to entry 12; no signature covers it.
    out.push(
      encodeEntry({
        ...(s.decoded[0] as LogEntry),
        index: 13,
        prev: entryHash(out[11] as Uint8Array),
      }),
    );
    await fails(out, LogEntryAlteredError, 13, /entry 13 is a second genesis entry/);
  });

  test('an entry altered with the chain re-linked after it: the next signature refuses the tree', async () => {
    // Without the service key: the signature entries keep their signed payloads, only their
    // prev (which the signature does not cover) is recomputed, like every later entry's.
    const s = build();
    const out = s.entries.slice();
    out[4] = encodeEntry({ ...(s.decoded[4] as LogEntry), claims: new Uint8Array(32).fill(7) });
    for (let i = 5; i < out.length; i++) {
      out[i] = encodeEntry({
        ...(s.decoded[i] as LogEntry),
        prev: entryHash(out[i - 1] as Uint8Array),
      });
    }
    await fails(
      out,
      LogSignatureError,
      8,
      /signature entry 8 signs a tree root that is not the root of entries 1\.\.7/,
    );
  });

  test('a signature entry replayed at a later position: it signs another size', async () => {
    const s = build();
    const out = s.entries.slice();
    // Entry 11 carries entry 8's signature (size 7), chained in place; entry 12 re-linked.
    out[10] = encodeEntry({ ...(s.decoded[10] as LogEntry), sig: (s.decoded[7] as LogEntry).sig });
    out[11] = encodeEntry({ ...(s.decoded[11] as LogEntry), prev: entryHash(out[10]) });
    await fails(
      out,
      LogSignatureError,
      11,
      /signature entry 11 signs term 1 size 7, not term 1 size 10/,
    );
  });

  test('an altered byte inside an entry names that entry', async () => {
    const s = build();
    // The last bytes of a transaction entry are its claims digest: still decodes, chain breaks.
    await fails(
      alter(s.entries, 5, -3),
      LogEntryAlteredError,
      5,
      /entry 5 does not hash to the prev/,
    );
    await fails(alter(s.entries, 1, -3), LogEntryAlteredError, 1);
    // The first byte (array header) no longer decodes.
    await fails(alter(s.entries, 9, 0), LogEntryAlteredError, 9, /does not decode/);
  });

  test('a missing entry', async () => {
    const s = build();
    const e = s.entries.slice();
    e.splice(5, 1); // drop entry 6
    await fails(e, LogEntryMissingError, 6, /entry 6 is missing/);
    await fails([], LogEntryMissingError, 1);
    await fails(s.entries.slice(1), LogEntryMissingError, 1);
  });

  test('swapped entries', async () => {
    const s = build();
    const e = s.entries.slice();
    [e[3], e[4]] = [e[4] as Uint8Array, e[3] as Uint8Array]; // entries 4 and 5
    await fails(e, LogEntryReorderedError, 4, /position 4 holds entry 5/);
  });

  test('an input that fails while the audit reads on to tell a move from a gap: named at the first wrong position', async () => {
    const s = build();
    // Position 5 holds entry 6 (entry 5 gone); further on, the input itself fails (as the CLI's
    // store reader does for a key out of place at position 9).
    const later = new LogEntryMissingError(
      9,
      'entry 9 is missing: the next key is that of entry 11',
    );
    async function* input(): AsyncIterable<Uint8Array> {
      yield* s.entries.slice(0, 4);
      yield* s.entries.slice(5, 8);
      throw later;
    }
    await assert.rejects(auditLog(input()), (e: unknown) => {
      assert.ok(e instanceof LogEntryMissingError, String(e));
      assert.equal(e.index, 5);
      assert.equal(
        e.message,
        'entry 5 is not at position 5 (it holds entry 6), and reading on to find it stopped at position 9: entry 9 is missing: the next key is that of entry 11',
      );
      assert.equal(e.cause, later);
      return true;
    });
  });

  test('a duplicated entry', async () => {
    const s = build();
    const e = s.entries.slice();
    e.splice(6, 0, e[5] as Uint8Array); // entry 6 twice
    await fails(e, LogEntryReorderedError, 7, /position 7 holds entry 6/);
    const replaced = s.entries.slice();
    replaced[6] = replaced[5] as Uint8Array; // entry 7 overwritten by entry 6
    await fails(replaced, LogEntryReorderedError, 7);
  });

  test('a tail cut after a trusted root', async () => {
    const s = build();
    const trusted = { size: 10, root: s.tree.root(10) };
    await auditLog(s.entries, { trusted });
    await fails(s.entries.slice(0, 8), LogTailCutError, 9, /ends at entry 8/, { trusted });
  });

  test('a root at the trusted size that differs (a fork)', async () => {
    const s = build();
    await fails(s.entries, RollbackDetectedError, undefined, /fork/, {
      trusted: { size: 10, root: s.tree.root(9) },
    });
  });

  test('a bad signature', async () => {
    const s = build();
    await fails(
      alter(s.entries, 8, -2),
      LogSignatureError,
      8,
      /does not verify with the service key/,
    );
    const t = new KitService();
    t.tx();
    t.sign(p256Key()); // a key that is not the service's
    await fails(t.entries, LogSignatureError, 4);
  });

  test('a signature or endorsement re-encoded with an unprotected header is refused', async () => {
    const extra = new Map<unknown, unknown>([[4, Uint8Array.of(0)]]);
    const t = new KitService();
    t.tx();
    t.sign(t.service, (c) => withUnprotected(c, extra)); // the last entry: nothing chains to it
    await fails(t.entries, LogSignatureError, 4);
    const g = new KitService({ reshapeEnd: (c) => withUnprotected(c, extra) });
    await fails(g.entries, LogSignatureError, 1, /unprotected header must be empty/);
  });

  test('the genesis evidence is checked against the constraint: a mismatch is named as one', async () => {
    const s = build();
    // Not LOG_SIGNATURE ("the signature entry does not verify"): the log is genuine, the code or
    // platform is not one the auditor accepts; the constraint check's own code says so.
    await fails(s.entries, LogGenesisConstraintError, 1, /verifies .* but does not satisfy/, {
      constraint: SECURE_CONSTRAINT,
    });
    await assert.rejects(auditLog(s.entries, { constraint: SECURE_CONSTRAINT }), {
      code: 'INSECURE_PLATFORM',
    });
    const other = `C:${'00'.repeat(32)} SEC:INSECURE`;
    await assert.rejects(auditLog(s.entries, { constraint: other }), {
      code: 'CONSTRAINT_MISMATCH',
      index: 1,
    });
  });

  test("a genesis carrying another node's evidence is tampering even under a secure-only constraint", async () => {
    // INSECURE_PLATFORM is raised before the nonce and key binding are checked: the evidence is
    // checked again, admitting insecure platforms, before the log is called genuine.
    const other = new KitService();
    const s = new KitService({ ev: other.ev });
    await fails(s.entries, LogSignatureError, 1, /genesis evidence does not verify/, {
      constraint: SECURE_CONSTRAINT,
    });
  });

  test("the constraint's SVC: clause is the log's service; APP: clauses are named unchecked", async () => {
    const s = build();
    const mine = toHex(serviceIdentity(s.service.publicKey));
    await fails(
      s.entries,
      LogGenesisConstraintError,
      1,
      /service identity .* does not match SVC:/,
      {
        constraint: `${CONSTRAINT} SVC:${'00'.repeat(32)}`,
      },
    );
    const app = `APP:shop=${'11'.repeat(32)}`;
    const report = await auditLog(s.entries, { constraint: `${CONSTRAINT} SVC:${mine} ${app}` });
    assert.ok(
      report.checked.some((c) => /satisfies the constraint, its SVC: clause included/.test(c)),
    );
    assert.ok(report.checked.some((c) => c.startsWith(`NOT checked: ${app} (`)));
  });

  test('entry 1 of another kind than genesis is refused, naming entry 1', async () => {
    const s = build();
    const out = s.entries.slice();
    out[0] = encodeEntry({ ...(s.decoded[2] as LogEntry), index: 1, prev: new Uint8Array(32) });
    await fails(out, LogEntryAlteredError, 1, /entry 1 is of kind 2, not genesis \(1\)/);
  });

  test('a genesis endorsement of another service key than meta.svc is refused', async () => {
    // Genuine bytes (another service's endorsement, signed by its node): not this log's service.
    const other = new KitService();
    const s = new KitService({ end: other.end });
    await fails(
      s.entries,
      LogSignatureError,
      1,
      /the genesis endorsement endorses another service key than meta\.svc/,
    );
  });

  test('a genesis endorsement naming the node key but signed by another key is refused', async () => {
    const forger = p256Key();
    const s = new KitService({ reshapeEnd: (c) => sign1(forger, decodeSign1(c).payload) });
    await fails(
      s.entries,
      LogSignatureError,
      1,
      /the genesis endorsement is not signed by the node key it names/,
    );
  });

  test('genesis evidence that does not parse is LOG_SIGNATURE at entry 1, without a constraint too', async () => {
    const s = new KitService({ ev: Uint8Array.of(0xd2, 0x84) });
    await fails(s.entries, LogSignatureError, 1, /the genesis evidence is malformed: /);
  });

  test('genesis endorsed by another node key than the evidence binds', async () => {
    const other = new KitService();
    const s = new KitService({ ev: other.ev });
    await fails(s.entries, LogSignatureError, 1, /genesis evidence/);
  });
});
