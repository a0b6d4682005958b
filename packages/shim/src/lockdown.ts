/**
 * Removes the ambient authority enclave code must not use (DESIGN.md §10): the clock, non-crypto
 * randomness, `process`, the network, timers and other ways to wait on time, cross-thread
 * channels, and module loading beyond `node:crypto`. Each is replaced by a stub that throws
 * AmbientAccessError (ambient-error.ts) naming it, so a use fails loudly and by name (see
 * docs/boundary.md, "Lockdown"). `console` is silenced rather than stubbed: enclave output is not
 * a log channel, and a dependency's warning must not crash the enclave.
 *
 * The shim calls `lockdown` once, after capturing what it needs itself and before any other
 * module of the bundle is evaluated (capture.ts); this module therefore imports nothing. It is not
 * a sandbox against hostile code (enclave code is trusted and reviewed): it turns an accidental
 * dependency on the host's world into an immediate, named failure.
 */

/** Makes the error a stub throws; `ambient` names what was used. */
export type AmbientErrorFactory = (ambient: string) => Error;

// Until `useAmbientError` is called (by ambient-error.ts, right after lockdown), stubs throw a
// plain Error carrying the same code: this module imports nothing, so it can run before any other.
let makeError: AmbientErrorFactory = (ambient) =>
  Object.assign(new Error(`enclave code used ${ambient}, which is removed in the enclave`), {
    name: 'AmbientAccessError',
    code: 'AMBIENT_ACCESS',
    ambient,
  });

/** Sets the error stubs throw from now on. */
export function useAmbientError(factory: AmbientErrorFactory): void {
  makeError = factory;
}

/** Globals replaced by a function that throws when called or constructed. */
export const STUBBED_FUNCTIONS = [
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'clearImmediate',
  'fetch',
  'WebSocket',
  'XMLHttpRequest',
  'EventSource',
  'BroadcastChannel',
  // `new File([], name).lastModified` is Date.now() read through Node's own copy of it.
  'File',
  'Performance',
  'PerformanceEntry',
  'PerformanceMark',
  'PerformanceMeasure',
  'PerformanceObserver',
  'PerformanceObserverEntryList',
  'PerformanceResourceTiming',
] as const;

/** Globals replaced by an object every use of which throws. */
export const STUBBED_OBJECTS = ['process', 'performance'] as const;

/** Members replaced by a throwing stub: `[owner, member, name in the error]`. */
const STUBBED_MEMBERS = [
  ['Math', 'random', 'Math.random'],
  ['Date', 'now', 'Date.now'],
  ['Atomics', 'wait', 'Atomics.wait'],
  ['Atomics', 'waitAsync', 'Atomics.waitAsync'],
  ['AbortSignal', 'timeout', 'AbortSignal.timeout'],
] as const;

/** The eval-script globals of a worker: deleted (`require` is replaced, see `lockdown`). */
const DELETED = ['module', 'exports', '__filename', '__dirname'] as const;

type Globals = Record<string, unknown>;

function stubFunction(name: string): () => never {
  return function ambientStub(): never {
    throw makeError(name);
  };
}

function stubObject(name: string): object {
  const fail = (): never => {
    throw makeError(name);
  };
  return new Proxy(stubFunction(name), {
    get: fail,
    set: fail,
    has: fail,
    ownKeys: fail,
    getOwnPropertyDescriptor: fail,
    defineProperty: fail,
    deleteProperty: fail,
    apply: fail,
    construct: fail,
  });
}

/**
 * Every stub, and every member lockdown changes, is read-only and non-configurable: code that
 * assigns, redefines or deletes it (a polyfill, a test double, an app's JavaScript) gets false or,
 * in strict code, a TypeError, and the stub stays in place. Replacing one could not bring the
 * removed global back (only lockdown's closures hold the originals), but it would turn a named
 * failure into silent use of whatever replaced it.
 */
function replace(owner: object, key: string, value: unknown): void {
  Object.defineProperty(owner, key, {
    value,
    writable: false,
    configurable: false,
    enumerable: false,
  });
}

/** Makes `owner[key]` read-only and non-configurable, keeping its value. */
function pin(owner: object, key: string): void {
  replace(owner, key, (owner as Globals)[key]);
}

/**
 * Globals that hold a member lockdown changes, pinned as they are, so that replacing the holder
 * (`globalThis.Math = {...}`) cannot mask the stub either: `[owner path, key]`.
 */
const PINNED_HOLDERS = [
  [[], 'Math'],
  [[], 'Atomics'],
  [[], 'AbortSignal'],
  [[], 'Event'],
  [[], 'Intl'],
  [['Intl'], 'DateTimeFormat'],
] as const;

/** `Date` that refuses the current time: `new Date()`, `Date()` and `Date.now()` throw. */
function lockDate(g: Globals): void {
  const RealDate = g.Date as DateConstructor;
  const SafeDate = new Proxy(RealDate, {
    construct(target, args, newTarget) {
      if (args.length === 0) throw makeError('new Date()');
      return Reflect.construct(target, args, newTarget) as object;
    },
    apply() {
      throw makeError('Date()');
    },
  });
  // Non-configurable, and an accessor rather than a read-only value: assigning `constructor` to
  // an object that inherits from Date.prototype (ES5-style subclassing) still defines it there,
  // which an inherited read-only property would refuse (the "override mistake"); assigning it on
  // Date.prototype itself throws.
  const proto = RealDate.prototype;
  Object.defineProperty(proto, 'constructor', {
    get: () => SafeDate,
    set(this: object, value: unknown) {
      if (this === proto) {
        throw new TypeError('Date.prototype.constructor is locked in the enclave');
      }
      Object.defineProperty(this, 'constructor', {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    },
    enumerable: false,
    configurable: false,
  });
  replace(g, 'Date', SafeDate);
}

/** `Intl.DateTimeFormat` formats the current time when given no date: refuse that. */
function lockDateTimeFormat(): void {
  const proto = Intl.DateTimeFormat.prototype;
  const format = Object.getOwnPropertyDescriptor(proto, 'format')?.get;
  const formatToParts = proto.formatToParts;
  if (format !== undefined) {
    Object.defineProperty(proto, 'format', {
      configurable: false,
      get(this: Intl.DateTimeFormat) {
        const f = format.call(this) as (d?: Date | number) => string;
        return (d?: Date | number): string => {
          if (d === undefined) throw makeError('Intl.DateTimeFormat format()');
          return f(d);
        };
      },
    });
  }
  replace(proto, 'formatToParts', function (this: Intl.DateTimeFormat, d?: Date | number) {
    if (d === undefined) throw makeError('Intl.DateTimeFormat formatToParts()');
    return formatToParts.call(this, d);
  });
}

/** `Event#timeStamp` reads the monotonic clock. */
function lockEventTimeStamp(g: Globals): void {
  const E = g.Event as { prototype: object } | undefined;
  if (E === undefined) return;
  Object.defineProperty(E.prototype, 'timeStamp', {
    configurable: false,
    get: () => {
      throw makeError('Event.timeStamp');
    },
  });
}

function silenceConsole(g: Globals): void {
  const real = g.console as Record<string, unknown>;
  const quiet: Record<string, unknown> = {};
  for (const k of Object.keys(real)) quiet[k] = typeof real[k] === 'function' ? () => {} : real[k];
  replace(g, 'console', Object.freeze(quiet));
}

/**
 * Locks down `g` (the worker's globalThis). `modules` are what the restricted `require` that
 * replaces the worker's `require` still returns (the enclave bundle loads `node:crypto` through
 * it); any other module throws. Returns the names of what was removed.
 */
export function lockdown(g: Globals, modules: Readonly<Record<string, unknown>>): string[] {
  const removed: string[] = [];
  for (const name of STUBBED_FUNCTIONS) {
    replace(g, name, stubFunction(name));
    removed.push(name);
  }
  for (const name of STUBBED_OBJECTS) {
    replace(g, name, stubObject(name));
    removed.push(name);
  }
  for (const [owner, member, name] of STUBBED_MEMBERS) {
    const o = g[owner] as object | undefined;
    if (o === undefined) continue;
    replace(o, member, stubFunction(name));
    removed.push(name);
  }
  lockDate(g);
  lockDateTimeFormat();
  lockEventTimeStamp(g);
  for (const [path, key] of PINNED_HOLDERS) {
    let owner: object | undefined = g;
    for (const p of path) owner = (owner as Globals | undefined)?.[p] as object | undefined;
    if (owner !== undefined && (owner as Globals)[key] !== undefined) pin(owner, key);
  }
  removed.push('new Date()', 'Date()', 'Intl.DateTimeFormat format()', 'Event.timeStamp');
  for (const name of DELETED) {
    delete g[name];
    removed.push(name);
  }
  const allowed = new Map(Object.entries(modules));
  replace(g, 'require', (id: string): unknown => {
    if (allowed.has(id)) return allowed.get(id);
    throw makeError(`require('${String(id)}')`);
  });
  removed.push('require');
  silenceConsole(g);
  return removed;
}
