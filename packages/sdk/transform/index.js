/**
 * The SDK's asc transform: turns `@query` / `@transaction` marks into the ABI v1 exports
 * (docs/app-abi.md §2, §3), so an app never writes route registration by hand.
 *
 * After parsing, it looks at the top-level functions of every user entry file. A function marked
 * `@query` or `@transaction` must be exported, take no parameter or one of type `Json` (the parsed
 * call arguments) and declare its return type (`void`, `Json`, `Json | null`, `string`, `bool` or
 * a number: the SDK encodes it as the call's JSON result). The marks are removed and one more entry
 * file is added next to the first entry, `__cloister_routes.ts`, which exports
 *
 *   cloister_abi_version() → 1
 *   cloister_routes()       registers each method: route(kind, name, id), id = its position
 *   cloister_call(id, len)  reads the arguments, calls the method, sets its result
 *
 * A function marked `@migrate` (at most one, exported, no parameter, void) becomes the export
 * `cloister_migrate`, which the runtime runs inside an upgrade (docs/app-abi.md §3.3).
 *
 * The method name is the function's name; ids follow source order. Mistakes are compile errors
 * (AS102, "User-defined") that point at the function. `transform.methods` holds the list after a
 * compile, for `cloister app build`'s manifest.
 */
import { CommonFlags, DiagnosticCode, NodeKind, SourceKind } from 'assemblyscript';

/** The ABI version the generated code declares. */
export const ABI_VERSION = 1;
/** Name of the generated entry file, next to the app's first entry file. */
export const ROUTES_FILE = '__cloister_routes';
/** Route kinds of docs/app-abi.md §3.1. */
const KINDS = { query: 0, transaction: 1 };
const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;
/** Return types the generated code can encode (assembly/dispatch.ts `__cloisterResult`). */
const RESULT_TYPES = new Set(
  'void Json string String bool i8 i16 i32 i64 isize u8 u16 u32 u64 usize f32 f64'.split(' '),
);
const MAX_ROUTES = 256;

function decoratorName(d) {
  return d.name.kind === NodeKind.Identifier ? d.name.text : '';
}

function typeText(node) {
  if (node === null || node === undefined) return '';
  if (node.kind === NodeKind.NamedType) {
    return node.name.identifier.text + (node.isNullable ? ' | null' : '');
  }
  return '?';
}

export default class CloisterTransform {
  constructor() {
    /** @type {{ name: string, kind: 'query' | 'transaction', file: string }[]} */
    this.methods = [];
  }

  afterParse(parser) {
    this.methods = [];
    const found = [];
    const migrations = [];
    let marked = 0;
    // The runtime (`~lib/rt/…`) is an entry file too: only the app's own files are looked at.
    const entries = parser.sources.filter(
      (s) => s.sourceKind === SourceKind.UserEntry && !s.internalPath.startsWith('~lib/'),
    );
    for (const source of entries) {
      for (const stmt of source.statements) {
        if (stmt.kind !== NodeKind.FunctionDeclaration || !stmt.decorators) continue;
        const mig = stmt.decorators.filter((d) => decoratorName(d) === 'migrate');
        if (mig.length > 0) {
          stmt.decorators = stmt.decorators.filter((d) => !mig.includes(d));
          if (stmt.decorators.length === 0) stmt.decorators = null;
          const m = this.checkMigrate(parser, source, stmt, migrations);
          if (m) migrations.push(m);
          continue;
        }
        const marks = stmt.decorators.filter((d) => Object.hasOwn(KINDS, decoratorName(d)));
        if (marks.length === 0) continue;
        marked++;
        stmt.decorators = stmt.decorators.filter((d) => !marks.includes(d));
        if (stmt.decorators.length === 0) stmt.decorators = null;
        const m = this.check(parser, source, stmt, marks);
        if (m) found.push(m);
      }
    }
    const seen = new Set();
    for (const m of found) {
      if (seen.has(m.name)) {
        this.error(parser, m.range, `method '${m.name}' is marked twice (in two entry files)`);
      }
      seen.add(m.name);
    }
    if (found.length > MAX_ROUTES) {
      this.error(parser, found[MAX_ROUTES].range, `more than ${MAX_ROUTES} methods (ABI limit)`);
    }
    if (marked === 0) {
      const where = entries.map((s) => s.normalizedPath).join(', ') || 'the entry file';
      const range = entries[0]?.range ?? null;
      this.error(
        parser,
        range,
        `no method marked @query or @transaction in ${where}: an app needs at least one`,
      );
      return;
    }
    if (found.length === 0) return;
    this.methods = found.map((m) => ({ name: m.name, kind: m.kind, file: m.file }));
    const first = entries[0].normalizedPath;
    const dir = first.includes('/') ? first.slice(0, first.lastIndexOf('/') + 1) : '';
    parser.parseFile(generate(found, dir, migrations[0]), `${dir}${ROUTES_FILE}.ts`, true);
  }

  /** `@migrate`: at most one, exported, no parameter, returns void (docs/app-abi.md §3.3). */
  checkMigrate(parser, source, stmt, already) {
    const where = `migration '${stmt.name.text}'`;
    if (already.length > 0) {
      this.error(parser, stmt.name.range, `${where}: an app has at most one @migrate function`);
      return null;
    }
    if ((stmt.flags & CommonFlags.Export) === 0) {
      this.error(parser, stmt.name.range, `${where} is marked @migrate but not exported`);
      return null;
    }
    const sig = stmt.signature;
    if (sig.parameters.length > 0 || typeText(sig.returnType) !== 'void') {
      this.error(parser, stmt.name.range, `${where} takes no parameter and returns void`);
      return null;
    }
    return { name: stmt.name.text, internal: source.internalPath };
  }

  check(parser, source, stmt, marks) {
    const name = stmt.name.text;
    const kind = decoratorName(marks[0]);
    const where = `method '${name}'`;
    if (marks.length > 1) {
      this.error(parser, marks[1].range, `${where} is marked more than once`);
      return null;
    }
    if ((stmt.flags & CommonFlags.Export) === 0) {
      this.error(parser, stmt.name.range, `${where} is marked @${kind} but not exported`);
      return null;
    }
    if (stmt.typeParameters && stmt.typeParameters.length > 0) {
      this.error(parser, stmt.name.range, `${where} cannot be generic`);
      return null;
    }
    if (!NAME_RE.test(name)) {
      this.error(parser, stmt.name.range, `${where}: names are 1-128 of [A-Za-z0-9_.-]`);
      return null;
    }
    const sig = stmt.signature;
    const params = sig.parameters;
    if (params.length > 1 || (params.length === 1 && typeText(params[0].type) !== 'Json')) {
      this.error(
        parser,
        sig.range,
        `${where} takes no parameter or one of type Json (the call's arguments)`,
      );
      return null;
    }
    const ret = typeText(sig.returnType);
    if (ret === '' || sig.returnType.range.start === sig.returnType.range.end) {
      this.error(parser, stmt.name.range, `${where} must declare its return type`);
      return null;
    }
    const base = ret.replace(/ \| null$/, '');
    if (!RESULT_TYPES.has(base) || (ret !== base && base !== 'Json' && base !== 'string')) {
      this.error(
        parser,
        sig.returnType.range,
        `${where} returns ${ret}: a method returns void, Json, string, bool or a number`,
      );
      return null;
    }
    return {
      name,
      kind,
      file: source.normalizedPath,
      internal: source.internalPath,
      takesArgs: params.length === 1,
      returnsVoid: ret === 'void',
      range: stmt.name.range,
    };
  }

  error(parser, range, message) {
    parser.error(DiagnosticCode.User_defined_0, range, message);
  }
}

/** Source text of the generated entry file; `dir` is the folder of the first entry file. */
function generate(methods, dir, migration) {
  const imports = new Map();
  const use = (internal, spec) => {
    const from = relativeImport(dir, internal);
    if (!imports.has(from)) imports.set(from, []);
    imports.get(from).push(spec);
  };
  methods.forEach((m, i) => {
    use(m.internal, `${m.name} as __m${i}`);
  });
  if (migration) use(migration.internal, `${migration.name} as __migrate`);
  const lines = [
    '// Generated by the @cloister/sdk transform (docs/app-abi.md §3). Do not edit.',
    "import { __cloisterArgs, __cloisterResult, __cloisterRoute } from '@cloister/sdk/assembly/dispatch';",
  ];
  for (const [from, names] of imports) lines.push(`import { ${names.join(', ')} } from '${from}';`);
  lines.push(
    '',
    `export function cloister_abi_version(): i32 { return ${ABI_VERSION}; }`,
    '',
    'export function cloister_routes(): void {',
    ...methods.map((m, i) => `  __cloisterRoute(${KINDS[m.kind]}, '${m.name}', ${i});`),
    '}',
    '',
    'export function cloister_call(route: i32, argsLen: i32): void {',
  );
  methods.forEach((m, i) => {
    const call = `__m${i}(${m.takesArgs ? '__cloisterArgs(argsLen)' : ''})`;
    const body = m.returnsVoid ? `${call};` : `__cloisterResult(${call});`;
    lines.push(`  if (route == ${i}) { ${body} return; }`);
  });
  lines.push('  unreachable();', '}', '');
  if (migration) {
    lines.push('export function cloister_migrate(): void {', '  __migrate();', '}', '');
  }
  return lines.join('\n');
}

/** An import specifier from folder `dir` to the internal path `target` (no extension). */
function relativeImport(dir, target) {
  const from = dir.split('/').filter(Boolean);
  const to = target.split('/');
  let k = 0;
  while (k < from.length && k < to.length - 1 && from[k] === to[k]) k++;
  const up = from.length - k;
  const rest = to.slice(k).join('/');
  return up === 0 ? `./${rest}` : `${'../'.repeat(up)}${rest}`;
}
