/**
 * Deploy-time refusals of the sandbox (docs/sandbox.md "Validation"): each refused module fails
 * with its named error and a message naming the offending thing; accepted features stay accepted.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Reader } from '../src/apps/sandbox/bytes.js';
import {
  instantiate,
  instrumentModule,
  MalformedModuleError,
  ModuleLimitError,
  UnknownImportError,
  UnsupportedFeatureError,
  validateModule,
} from '../src/apps/sandbox/index.js';
import { code, I, i32, T, uleb, wasm } from './sandbox-wasm.js';

const none = { allowedImports: [] };
const ok = (body = code(i32(7))): Uint8Array =>
  wasm({ funcs: [{ results: [T.i32], body, export: 'run' }] });

function refuses<E extends Error>(
  bytes: Uint8Array,
  cls: new (...a: never[]) => E,
  text: RegExp,
): void {
  assert.throws(
    () => validateModule(bytes, none),
    (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
      assert.match((e as Error).message, text);
      return true;
    },
  );
}

describe('sandbox validation', () => {
  test('a plain module passes and still runs', () => {
    validateModule(ok(), none);
    const inst = instantiate(instrumentModule(ok()), () => ({}));
    assert.equal(inst.call('run', [], 100).result, 7);
  });

  test('malformed bytes are refused by name', () => {
    refuses(new Uint8Array(0), MalformedModuleError, /magic/);
    refuses(Uint8Array.of(0, 0x61, 0x73, 0x6d, 2, 0, 0, 0), MalformedModuleError, /version/);
    const good = ok();
    refuses(good.subarray(0, good.length - 3), MalformedModuleError, /past the end|end/);
    const unknownSection = Uint8Array.from([...good, 0x20, 0x00]);
    refuses(unknownSection, MalformedModuleError, /unknown section id 32/);
    const outOfOrder = wasm({ funcs: [{ body: [] }], raw: [{ id: 1, payload: [0] }] });
    refuses(outOfOrder, MalformedModuleError, /out of order/);
    refuses(ok(code(0xc5)), MalformedModuleError, /unknown opcode 0xc5/);
    // Well-formed sections, ill-typed body: V8's validator names it.
    refuses(ok(code(i32(1), I.i32Add)), MalformedModuleError, /malformed module/);
  });

  test('our own parse names what V8 would refuse less precisely', () => {
    const head = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const mod = (...sections: number[]) => Uint8Array.from([...head, ...sections]);
    // Two empty type sections; a type section one byte longer than its content.
    refuses(
      mod(1, 1, 0, 1, 1, 0),
      MalformedModuleError,
      /: section 1 at byte 13 is out of order or repeated$/,
    );
    refuses(mod(1, 2, 0, 0), MalformedModuleError, /: section 1 at byte 10 has trailing bytes$/);
    refuses(
      wasm({ memory: [0x01, 2, 1], funcs: [] }),
      MalformedModuleError,
      /maximum 1 below minimum 2/,
    );
    // Shared-everything threads and GC: refused as the features they are, not as malformed.
    const sharedGlobal = mod(6, 6, 1, T.i32, 0x02, 0x41, 0x00, 0x0b);
    refuses(sharedGlobal, UnsupportedFeatureError, /shared globals \(threads\)/);
    for (const form of [0x4e, 0x4f, 0x50, 0x5e, 0x5f]) {
      refuses(mod(1, 3, 1, form, 0), UnsupportedFeatureError, /GC types/);
    }
  });

  test('imports other than functions, tags, bodiless functions and odd value types are refused by name (coverage gap)', () => {
    const head = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const mod = (...sections: number[]) => Uint8Array.from([...head, ...sections]);
    const te = (t: string) => [t.length, ...new TextEncoder().encode(t)];
    /** An import section of one import "env"."x" of `kind` with `desc`. */
    const imported = (kind: number, ...desc: number[]) => {
      const p = [1, ...te('env'), ...te('x'), kind, ...desc];
      return mod(2, p.length, ...p);
    };
    refuses(
      imported(1, 0x70, 0x00, 1),
      UnknownImportError,
      /^import of a table "env"\."x" refused/,
    );
    refuses(imported(3, T.i32, 0x00), UnknownImportError, /^import of a global "env"\."x" refused/);
    refuses(
      imported(3, T.i32, 0x02),
      UnsupportedFeatureError,
      /shared globals \(threads\) \(import "env"\."x"\)/,
    );
    refuses(imported(4, 0, 0), UnsupportedFeatureError, /exception handling \(import "env"\."x"\)/);
    refuses(imported(5, 0), MalformedModuleError, /import "env"\."x" has unknown kind 5/);
    refuses(mod(13, 1, 0), UnsupportedFeatureError, /exception handling \(tag section\)/);
    refuses(
      mod(1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0),
      MalformedModuleError,
      /1 functions declared, 0 bodies$/,
    );
    refuses(mod(1, 5, 1, 0x60, 1, 0x63, 0), UnsupportedFeatureError, /typed references \/ GC/);
    refuses(mod(1, 5, 1, 0x60, 1, 0x55, 0), MalformedModuleError, /unknown value type 0x55/);
  });

  test('threads, shared memory and atomics are refused', () => {
    const shared = wasm({ memory: [0x03, 1, 1], funcs: [] });
    refuses(shared, UnsupportedFeatureError, /shared memory \(threads\)/);
    const atomic = wasm({
      memory: [0x00, 1],
      funcs: [{ results: [T.i32], body: code(i32(0), 0xfe, 0x10, 0x02, 0x00) }],
    });
    refuses(atomic, UnsupportedFeatureError, /threads \(atomics\).*function 0/);
  });

  test('memory64, multi-memory and relaxed SIMD are refused', () => {
    refuses(wasm({ memory: [0x04, 1], funcs: [] }), UnsupportedFeatureError, /memory64/);
    const two = wasm({ memory: [0x00, 1], funcs: [], raw: [] });
    // Splice a second memory into the memory section: count 2.
    const i = two.indexOf(0x05, 8);
    const bytes = Uint8Array.from([
      ...two.subarray(0, i),
      0x05,
      5,
      2,
      0x00,
      1,
      0x00,
      1,
      ...two.subarray(i + 5),
    ]);
    refuses(bytes, UnsupportedFeatureError, /multi-memory/);
    const relaxed = ok(
      code(0xfd, ...uleb(12), ...new Array(16).fill(0), 0xfd, ...uleb(0x100), I.drop, i32(0)),
    );
    refuses(relaxed, UnsupportedFeatureError, /relaxed SIMD/);
  });

  test('a memory index other than 0 in a memarg or a bulk memory instruction is multi-memory', () => {
    const withMemory = (...body: (number | readonly number[])[]): Uint8Array =>
      wasm({ memory: [0x00, 1], funcs: [{ body: code(...body) }] });
    // memory.copy dst src, memory.fill mem: the same instructions on memory 0 pass.
    validateModule(withMemory(i32(0), i32(0), i32(0), 0xfc, ...uleb(10), 0, 0), none);
    validateModule(withMemory(i32(0), i32(0), i32(0), 0xfc, ...uleb(11), 0), none);
    refuses(
      withMemory(i32(0), i32(0), i32(0), 0xfc, ...uleb(10), 1, 0),
      UnsupportedFeatureError,
      /multi-memory/,
    );
    refuses(
      withMemory(i32(0), i32(0), i32(0), 0xfc, ...uleb(10), 0, 1),
      UnsupportedFeatureError,
      /multi-memory/,
    );
    refuses(
      withMemory(i32(0), i32(0), i32(0), 0xfc, ...uleb(11), 1),
      UnsupportedFeatureError,
      /multi-memory/,
    );
    // i32.load with bit 6 of the alignment set: align 2, memory 1, offset 0.
    refuses(withMemory(i32(0), 0x28, 0x42, 1, 0, I.drop), UnsupportedFeatureError, /multi-memory/);
  });

  test('LEB128 integers: too long, too large or past the end is malformed, by name', () => {
    const u32 = (...b: number[]): number => new Reader(Uint8Array.from(b)).u32();
    assert.equal(u32(0xff, 0xff, 0xff, 0xff, 0x0f), 2 ** 32 - 1, 'the largest u32');
    assert.equal(u32(0x80, 0x80, 0x80, 0x80, 0x00), 0, 'five bytes, padded: allowed');
    assert.throws(() => u32(0xff, 0xff, 0xff, 0xff, 0x1f), /too large/, 'a 33rd bit set');
    assert.throws(() => u32(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), /too long/, 'six bytes');
    assert.throws(() => u32(0x80), /unexpected end/, 'cut in the middle');
    const s32 = (...b: number[]): number => {
      const r = new Reader(Uint8Array.from(b));
      r.skipSigned(32);
      return r.pos;
    };
    assert.equal(s32(0x80, 0x80, 0x80, 0x80, 0x78), 5, 'the lowest i32: sign bits all set');
    assert.equal(s32(0xff, 0xff, 0xff, 0xff, 0x07), 5, 'the highest i32: sign bits all clear');
    assert.throws(() => s32(0x80, 0x80, 0x80, 0x80, 0x10), /too large/, 'unused bits not the sign');
    assert.throws(() => s32(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), /too long/, 'a signed six bytes');
    const r = new Reader(Uint8Array.of(1, 2, 3, 4), 0, 3);
    assert.throws(() => r.take(4), /run past the end/, 'one byte past the end');
    assert.deepEqual(r.take(3), Uint8Array.of(1, 2, 3), 'up to the end exactly');
  });

  test('fixed-width SIMD is accepted and metered', () => {
    // v128.const 0x01 x16; i32x4.extract_lane 0
    const simd = ok(code(0xfd, ...uleb(12), ...new Array(16).fill(1), 0xfd, ...uleb(27), 0));
    validateModule(simd, none);
    const out = instantiate(instrumentModule(simd), () => ({})).call('run', [], 100);
    assert.equal(out.result, 0x01010101);
    assert.ok(out.fuelUsed > 0);
  });

  test('exception handling and tail calls are refused', () => {
    refuses(ok(code(0x06, 0x40, I.end, i32(1))), UnsupportedFeatureError, /exception handling/);
    const tail = wasm({ funcs: [{ results: [T.i32], body: code(0x12, 0) }] });
    refuses(tail, UnsupportedFeatureError, /tail calls/);
  });

  test('an unknown import is refused, naming module and field', () => {
    const bytes = wasm({
      imports: [
        { module: 'cloister', field: 'log', params: [T.i32] },
        { module: 'env', field: 'gettimeofday', results: [T.i32] },
      ],
      funcs: [{ body: [] }],
    });
    assert.throws(
      () => validateModule(bytes, { allowedImports: [{ module: 'cloister', field: 'log' }] }),
      (e: unknown) =>
        e instanceof UnknownImportError &&
        e.module === 'env' &&
        e.field === 'gettimeofday' &&
        /"env"\."gettimeofday"/.test(e.message),
    );
    const allowed = [
      { module: 'cloister', field: 'log' },
      { module: 'env', field: 'gettimeofday' },
    ];
    validateModule(bytes, { allowedImports: allowed });
    // A memory import is refused as an import too, naming its kind.
    const mem = Uint8Array.from([
      ...wasm({ funcs: [] }).subarray(0, 8),
      2,
      12,
      1,
      3,
      0x65,
      0x6e,
      0x76,
      3,
      0x6d,
      0x65,
      0x6d,
      2,
      0,
      1,
    ]);
    assert.throws(
      () => validateModule(mem, none),
      /import of a memory "env"."mem" refused: apps import only the ABI.s functions/,
    );
    // Allowed names are allowed as functions only: the same name imported as a memory is refused.
    assert.throws(
      () => validateModule(mem, { allowedImports: [{ module: 'env', field: 'mem' }] }),
      (e: unknown) =>
        e instanceof UnknownImportError &&
        e.code === 'APP_IMPORT_UNKNOWN' &&
        /import of a memory "env"."mem" refused/.test(e.message),
    );
  });

  test('memory and table caps are enforced at deploy', () => {
    refuses(
      wasm({ memory: [0x01, 1, 0x80, 0x10], funcs: [] }),
      ModuleLimitError,
      /2048 pages.*1024/,
    );
    refuses(wasm({ memory: [0x00, 0x81, 0x08], funcs: [] }), ModuleLimitError, /1025 pages/);
    // A table's declared maximum counts as much as its minimum.
    refuses(
      wasm({ table: [0x01, 1, ...uleb(65_537)], funcs: [] }),
      ModuleLimitError,
      /table 0 declares 65537 elements, above the cap of 65536/,
    );
    refuses(
      wasm({ table: [0x00, ...uleb(65_537)], funcs: [] }),
      ModuleLimitError,
      /65537 elements/,
    );
    assert.throws(
      () =>
        validateModule(wasm({ memory: [0x01, 1, 9], funcs: [] }), { ...none, maxMemoryPages: 8 }),
      ModuleLimitError,
    );
    assert.throws(
      () => validateModule(ok(), { ...none, maxModuleBytes: 10 }),
      /exceeds the cap of 10/,
    );
    // The default cap: 8 MiB (docs/sandbox.md §4), a custom section filling the rest.
    const sized = (total: number): Uint8Array => {
      const head = ok();
      const pad = (n: number) => [0x00, ...uleb(n), 0x00]; // id 0, size, empty name
      let body = total - head.length - pad(0).length;
      while (head.length + pad(body).length + body - 1 > total) body--;
      const section = Uint8Array.from(pad(body));
      const out = new Uint8Array(head.length + section.length + body - 1);
      out.set(head);
      out.set(section, head.length);
      return out;
    };
    validateModule(sized(8 * 1024 * 1024), none);
    assert.throws(
      () => validateModule(sized(8 * 1024 * 1024 + 1), none),
      /exceeds the cap of 8388608/,
      'one byte above the default cap',
    );
  });

  test('locals: a function is accepted only if it still compiles once instrumented', () => {
    // V8 allows 50,000 locals, parameters included; the instrumentation adds 3 of its own.
    const fn = (params: number, locals: number): Uint8Array =>
      wasm({
        funcs: [
          {
            params: new Array(params).fill(T.i32),
            results: [T.i32],
            locals: new Array(locals).fill(T.i32),
            body: code(i32(7)),
            export: 'run',
          },
        ],
      });
    const runs = (bytes: Uint8Array): number => {
      validateModule(bytes, none);
      const inst = instantiate(instrumentModule(bytes), () => ({}));
      return inst.call('run', [], 1000).result as number;
    };
    assert.equal(runs(fn(0, 49_997)), 7);
    refuses(fn(0, 49_998), ModuleLimitError, /function 0 declares 49998 locals, above 49997/);
    refuses(fn(0, 50_001), ModuleLimitError, /function 0 declares 50001 locals/);
    assert.equal(runs(fn(2, 49_995)), 7);
    refuses(
      fn(2, 49_996),
      ModuleLimitError,
      /declares 49996 locals, above 49995 .*its 2 parameters/,
    );
  });

  test('a reserved export name is refused', () => {
    const bytes = wasm({ funcs: [{ body: [], export: 'cloister:fuel' }] });
    refuses(bytes, ModuleLimitError, /reserved prefix/);
  });

  test('a start function runs metered at instantiation', () => {
    const endless = wasm({ funcs: [{ body: code(0x03, 0x40, 0x0c, 0, I.end) }], start: 0 });
    validateModule(endless, none);
    const instrumented = instrumentModule(endless);
    assert.throws(() => instantiate(instrumented, () => ({}), { startFuel: 1000 }), /out of fuel/);
    // A start function that finishes: its effect (memory write) is visible to the first call.
    const init = wasm({
      memory: [0x00, 1],
      funcs: [
        { body: code(i32(0), i32(42), I.i32Store) },
        { results: [T.i32], body: code(i32(0), I.i32Load), export: 'read' },
      ],
      start: 0,
    });
    const inst = instantiate(instrumentModule(init), () => ({}));
    assert.equal(inst.call('read', [], 100).result, 42);
  });
});
