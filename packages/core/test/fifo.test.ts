import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Fifo } from '../src/fifo.js';

test('Fifo: the same items in the same order as an array model, across compactions', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(2000), { maxLength: 60 }), (bursts) => {
      const q = new Fifo<number>();
      const model: number[] = [];
      let next = 0;
      for (const [i, n] of bursts.entries()) {
        // Alternate pushes and shifts in bursts long enough to pass the 1024-slot compaction.
        for (let k = 0; k < n; k++) {
          if (i % 2 === 0) {
            q.push(next);
            model.push(next++);
          } else {
            assert.equal(q.shift(), model.shift());
          }
          assert.equal(q.size, model.length);
          assert.equal(q.peek(), model[0]);
        }
      }
      while (model.length > 0) assert.equal(q.shift(), model.shift());
      assert.equal(q.shift(), undefined);
      assert.equal(q.size, 0);
    }),
    { numRuns: 200 },
  );
});
