/**
 * A small JSON value, parser and encoder (RFC 8259) for app arguments and results.
 *
 * `Json` is a tree: null, boolean, integer (i64, for number literals with no fraction or exponent
 * that fit), number (f64: the value JSON.parse reads, correctly rounded, float.ts), string, array,
 * or object (keys kept in insertion order; a repeated key in parsed text keeps its first position
 * and its last value, as JavaScript does). AssemblyScript has no exceptions, so
 * `Json.parse` returns null on bad input and leaves the reason in `Json.lastError`.
 *
 * Limits: nesting deeper than `JSON_MAX_DEPTH` is refused. Numbers that are not finite encode as
 * `null` (as `JSON.stringify` does); a finite f64 is written as JavaScript writes it, except that
 * about one in five takes one digit more than JSON.stringify's shortest form (the same value).
 * Parsing costs fuel linear in the text (a repeated member name is found through a map); `get`
 * and `set` search linearly: objects are expected to be small.
 */
import { parseNumber } from './float';

/** Deepest nesting `Json.parse` accepts (arrays and objects). */
export const JSON_MAX_DEPTH: i32 = 64;

/** Members from which the parser finds a repeated name through a map, not a linear search. */
const MEMBERS_INDEXED: i32 = 8;

export const enum JsonKind {
  Null = 0,
  Bool = 1,
  Integer = 2,
  Number = 3,
  String = 4,
  Array = 5,
  Object = 6,
}

export class Json {
  /** Why the last `Json.parse` returned null ("" after a success). */
  static lastError: string = '';

  kind: JsonKind;
  private b: bool = false;
  private i: i64 = 0;
  private n: f64 = 0;
  private s: string = '';
  private items: Array<Json> | null = null;
  private keys: Array<string> | null = null;

  private constructor(kind: JsonKind) {
    this.kind = kind;
  }

  // ---- constructors ----

  static null(): Json {
    return new Json(JsonKind.Null);
  }

  static bool(value: bool): Json {
    const j = new Json(JsonKind.Bool);
    j.b = value;
    return j;
  }

  static int(value: i64): Json {
    const j = new Json(JsonKind.Integer);
    j.i = value;
    return j;
  }

  static num(value: f64): Json {
    const j = new Json(JsonKind.Number);
    j.n = value;
    return j;
  }

  static str(value: string): Json {
    const j = new Json(JsonKind.String);
    j.s = value;
    return j;
  }

  static arr(): Json {
    const j = new Json(JsonKind.Array);
    j.items = new Array<Json>();
    return j;
  }

  static obj(): Json {
    const j = new Json(JsonKind.Object);
    j.items = new Array<Json>();
    j.keys = new Array<string>();
    return j;
  }

  /** Parses JSON text; null (and `Json.lastError`) on malformed input or nesting too deep. */
  static parse(text: string): Json | null {
    const p = new JsonParser(text);
    const v = p.value(0);
    if (v !== null) {
      p.space();
      if (p.pos < text.length) return p.fail('unexpected text after the value');
      Json.lastError = '';
    }
    return v;
  }

  // ---- predicates and readers ----

  get isNull(): bool {
    return this.kind == JsonKind.Null;
  }
  get isBool(): bool {
    return this.kind == JsonKind.Bool;
  }
  /** An integer literal (no fraction or exponent) that fits in i64. */
  get isInteger(): bool {
    return this.kind == JsonKind.Integer;
  }
  /** Any number, integer or not. */
  get isNumber(): bool {
    return this.kind == JsonKind.Integer || this.kind == JsonKind.Number;
  }
  get isString(): bool {
    return this.kind == JsonKind.String;
  }
  get isArray(): bool {
    return this.kind == JsonKind.Array;
  }
  get isObject(): bool {
    return this.kind == JsonKind.Object;
  }

  /** The boolean; false for anything else. */
  asBool(): bool {
    return this.kind == JsonKind.Bool ? this.b : false;
  }
  /** The integer (a number is truncated); 0 for anything else. */
  asI64(): i64 {
    if (this.kind == JsonKind.Integer) return this.i;
    if (this.kind == JsonKind.Number && isFinite(this.n)) return <i64>this.n;
    return 0;
  }
  /** The number; 0 for anything else. */
  asF64(): f64 {
    if (this.kind == JsonKind.Number) return this.n;
    if (this.kind == JsonKind.Integer) return <f64>this.i;
    return 0;
  }
  /** The string; "" for anything else. */
  asString(): string {
    return this.kind == JsonKind.String ? this.s : '';
  }

  /** Number of array items or object members; 0 for anything else. */
  get length(): i32 {
    const items = this.items;
    return items === null ? 0 : items.length;
  }

  /** Array item `index` (or the value of object member `index`); null when out of range. */
  at(index: i32): Json | null {
    const items = this.items;
    if (items === null || index < 0 || index >= items.length) return null;
    return unchecked(items[index]);
  }

  /** Object member names, in order; empty for anything else. */
  memberNames(): Array<string> {
    const keys = this.keys;
    return keys === null ? new Array<string>() : keys.slice(0);
  }

  /** Object member `key`, or null when absent or not an object. */
  get(key: string): Json | null {
    const keys = this.keys;
    if (keys === null) return null;
    const i = keys.lastIndexOf(key);
    return i < 0 ? null : unchecked(this.items![i]);
  }

  has(key: string): bool {
    return this.get(key) !== null;
  }

  /** Member `key` as a string; `fallback` when absent or not a string. */
  getString(key: string, fallback: string = ''): string {
    const v = this.get(key);
    return v !== null && v.isString ? v.s : fallback;
  }
  /** Member `key` as an integer; `fallback` when absent or not an integer. */
  getI64(key: string, fallback: i64 = 0): i64 {
    const v = this.get(key);
    return v !== null && v.isInteger ? v.i : fallback;
  }
  /** Member `key` as a number; `fallback` when absent or not a number. */
  getF64(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key);
    return v !== null && v.isNumber ? v.asF64() : fallback;
  }
  /** Member `key` as a boolean; `fallback` when absent or not a boolean. */
  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key);
    return v !== null && v.isBool ? v.b : fallback;
  }

  // ---- builders (return this, for chaining) ----

  /** Sets object member `key` (replacing an existing one). Aborts on a non-object. */
  set(key: string, value: Json): Json {
    assert(this.kind == JsonKind.Object, 'Json.set on a value that is not an object');
    const keys = this.keys!;
    const i = keys.lastIndexOf(key);
    if (i >= 0) {
      this.items![i] = value;
    } else {
      keys.push(key);
      this.items!.push(value);
    }
    return this;
  }
  setString(key: string, value: string): Json {
    return this.set(key, Json.str(value));
  }
  setI64(key: string, value: i64): Json {
    return this.set(key, Json.int(value));
  }
  setF64(key: string, value: f64): Json {
    return this.set(key, Json.num(value));
  }
  setBool(key: string, value: bool): Json {
    return this.set(key, Json.bool(value));
  }

  /**
   * The parser's `set`: the same result, but a repeated name is found through `names` (name →
   * index) once the object has `MEMBERS_INDEXED` members, so parsing n members is not n² string
   * comparisons (a client's argument object is parsed before any app code runs). Returns the
   * map to pass with the next member (null while the object is small). For the parser only.
   */
  addParsed(key: string, value: Json, names: Map<string, i32> | null): Map<string, i32> | null {
    const keys = this.keys!;
    const items = this.items!;
    if (names === null) {
      const i = keys.lastIndexOf(key);
      if (i >= 0) {
        items[i] = value;
        return null;
      }
      if (keys.length < MEMBERS_INDEXED) {
        keys.push(key);
        items.push(value);
        return null;
      }
      names = new Map<string, i32>();
      for (let k = 0; k < keys.length; k++) names.set(unchecked(keys[k]), k);
    }
    if (names.has(key)) {
      items[names.get(key)] = value;
    } else {
      names.set(key, keys.length);
      keys.push(key);
      items.push(value);
    }
    return names;
  }

  /** Appends to an array. Aborts on a non-array. */
  push(value: Json): Json {
    assert(this.kind == JsonKind.Array, 'Json.push on a value that is not an array');
    this.items!.push(value);
    return this;
  }

  // ---- encoding ----

  /** Compact JSON text. */
  stringify(): string {
    const out = new Array<string>();
    this.write(out);
    return out.join('');
  }

  toString(): string {
    return this.stringify();
  }

  private write(out: Array<string>): void {
    switch (this.kind) {
      case JsonKind.Null:
        out.push('null');
        break;
      case JsonKind.Bool:
        out.push(this.b ? 'true' : 'false');
        break;
      case JsonKind.Integer:
        out.push(this.i.toString());
        break;
      case JsonKind.Number:
        out.push(encodeNumber(this.n));
        break;
      case JsonKind.String:
        out.push(quoteJson(this.s));
        break;
      case JsonKind.Array: {
        const items = this.items!;
        out.push('[');
        for (let k = 0; k < items.length; k++) {
          if (k > 0) out.push(',');
          unchecked(items[k]).write(out);
        }
        out.push(']');
        break;
      }
      default: {
        const items = this.items!;
        const keys = this.keys!;
        out.push('{');
        for (let k = 0; k < items.length; k++) {
          if (k > 0) out.push(',');
          out.push(quoteJson(unchecked(keys[k])));
          out.push(':');
          unchecked(items[k]).write(out);
        }
        out.push('}');
      }
    }
  }
}

function encodeNumber(n: f64): string {
  if (!isFinite(n)) return 'null';
  if (n == Math.floor(n) && Math.abs(n) < 1e15) return (<i64>n).toString();
  // AssemblyScript writes an integral value below 1e21 with ".0" (123456789012345680000.0);
  // JSON.stringify does not. Its digits are those of Grisu2: the same f64, but now and then not
  // the shortest text that JSON.stringify picks (9.999999999999999e+22 for 1e+23).
  const s = n.toString();
  return s.endsWith('.0') ? s.substring(0, s.length - 2) : s;
}

const HEX = '0123456789abcdef';

/** `s` as a JSON string literal, quotes included. */
export function quoteJson(s: string): string {
  const out = new Array<string>();
  out.push('"');
  let run = 0;
  const n = s.length;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(k);
    if (c >= 0x20 && c != 0x22 && c != 0x5c && (c < 0xd800 || c > 0xdfff)) continue;
    if (c >= 0xd800 && c <= 0xdbff && k + 1 < n) {
      const d = s.charCodeAt(k + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        k++; // a surrogate pair: one character, written as it is
        continue;
      }
    }
    if (k > run) out.push(s.substring(run, k));
    run = k + 1;
    if (c == 0x22) out.push('\\"');
    else if (c == 0x5c) out.push('\\\\');
    else if (c == 0x0a) out.push('\\n');
    else if (c == 0x0d) out.push('\\r');
    else if (c == 0x09) out.push('\\t');
    else if (c == 0x08) out.push('\\b');
    else if (c == 0x0c) out.push('\\f');
    else if (c >= 0xd800) {
      // A lone surrogate (what "\ud800" parses to): escaped, as ES2019 JSON.stringify does.
      // Written raw it is no UTF-8, and the host refuses the whole result or stored text.
      out.push(
        '\\u' +
          HEX.charAt(c >> 12) +
          HEX.charAt((c >> 8) & 15) +
          HEX.charAt((c >> 4) & 15) +
          HEX.charAt(c & 15),
      );
    } else out.push('\\u00' + HEX.charAt(c >> 4) + HEX.charAt(c & 15));
  }
  if (n > run) out.push(s.substring(run, n));
  out.push('"');
  return out.join('');
}

class JsonParser {
  pos: i32 = 0;
  text: string;
  constructor(text: string) {
    this.text = text;
  }

  fail(why: string): Json | null {
    Json.lastError = why + ' at offset ' + this.pos.toString();
    return null;
  }

  space(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  literal(word: string, value: Json): Json | null {
    if (this.text.substr(this.pos, word.length) != word) return this.fail('invalid literal');
    this.pos += word.length;
    return value;
  }

  value(depth: i32): Json | null {
    this.space();
    if (this.pos >= this.text.length) return this.fail('unexpected end of text');
    const c = this.text.charCodeAt(this.pos);
    if (c == 0x7b || c == 0x5b) {
      if (depth >= JSON_MAX_DEPTH) {
        return this.fail('nesting deeper than ' + JSON_MAX_DEPTH.toString());
      }
      return c == 0x7b ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c == 0x22) {
      const s = this.string();
      return s === null ? null : Json.str(s);
    }
    if (c == 0x74) return this.literal('true', Json.bool(true));
    if (c == 0x66) return this.literal('false', Json.bool(false));
    if (c == 0x6e) return this.literal('null', Json.null());
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail('unexpected character');
  }

  array(depth: i32): Json | null {
    const a = Json.arr();
    this.pos++;
    this.space();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return a;
    }
    let c: i32;
    do {
      const v = this.value(depth);
      if (v === null) return null;
      a.push(v);
      this.space();
      if (this.pos >= this.text.length) return this.fail('unterminated array');
      c = this.text.charCodeAt(this.pos++);
    } while (c == 0x2c);
    if (c == 0x5d) return a;
    this.pos--;
    return this.fail("expected ',' or ']'");
  }

  object(depth: i32): Json | null {
    const o = Json.obj();
    let names: Map<string, i32> | null = null;
    this.pos++;
    this.space();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return o;
    }
    let c: i32;
    do {
      this.space();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x22) {
        return this.fail('expected a member name');
      }
      const key = this.string();
      if (key === null) return null;
      this.space();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x3a) {
        return this.fail("expected ':'");
      }
      this.pos++;
      const v = this.value(depth);
      if (v === null) return null;
      names = o.addParsed(key, v, names);
      this.space();
      if (this.pos >= this.text.length) return this.fail('unterminated object');
      c = this.text.charCodeAt(this.pos++);
    } while (c == 0x2c);
    if (c == 0x7d) return o;
    this.pos--;
    return this.fail("expected ',' or '}'");
  }

  /** A string literal at `pos` (on its opening quote); null (and lastError) when malformed. */
  string(): string | null {
    const t = this.text;
    const out = new Array<string>();
    let run = ++this.pos;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c == 0x22) {
        if (this.pos > run) out.push(t.substring(run, this.pos));
        this.pos++;
        return out.join('');
      }
      if (c < 0x20) {
        this.fail('control character in a string');
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      if (this.pos > run) out.push(t.substring(run, this.pos));
      if (this.pos + 1 >= t.length) break;
      const e = t.charCodeAt(this.pos + 1);
      this.pos += 2;
      if (e == 0x22) out.push('"');
      else if (e == 0x5c) out.push('\\');
      else if (e == 0x2f) out.push('/');
      else if (e == 0x62) out.push('\b');
      else if (e == 0x66) out.push('\f');
      else if (e == 0x6e) out.push('\n');
      else if (e == 0x72) out.push('\r');
      else if (e == 0x74) out.push('\t');
      else if (e == 0x75) {
        const u = this.hex4();
        if (u < 0) {
          this.fail('invalid \\u escape');
          return null;
        }
        out.push(String.fromCharCode(u));
      } else {
        this.pos -= 2;
        this.fail('invalid escape');
        return null;
      }
      run = this.pos;
    }
    this.fail('unterminated string');
    return null;
  }

  hex4(): i32 {
    if (this.pos + 4 > this.text.length) return -1;
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.text.charCodeAt(this.pos + k);
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else return -1;
      v = (v << 4) | d;
    }
    this.pos += 4;
    return v;
  }

  digits(): i32 {
    const start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
    }
    return this.pos - start;
  }

  number(): Json | null {
    const t = this.text;
    const start = this.pos;
    if (t.charCodeAt(this.pos) == 0x2d) this.pos++;
    const intStart = this.pos;
    const intDigits = this.digits();
    if (intDigits == 0) return this.fail('invalid number');
    if (intDigits > 1 && t.charCodeAt(intStart) == 0x30) {
      this.pos = intStart;
      return this.fail('leading zero in a number');
    }
    let integer = true;
    if (this.pos < t.length && t.charCodeAt(this.pos) == 0x2e) {
      this.pos++;
      integer = false;
      if (this.digits() == 0) return this.fail('invalid number');
    }
    if (this.pos < t.length && (t.charCodeAt(this.pos) | 0x20) == 0x65) {
      this.pos++;
      integer = false;
      if (this.pos < t.length) {
        const s = t.charCodeAt(this.pos);
        if (s == 0x2b || s == 0x2d) this.pos++;
      }
      if (this.digits() == 0) return this.fail('invalid number');
    }
    const lit = t.substring(start, this.pos);
    // 18 digits always fit in i64; 19 do when at most 2^63 − 1 (or 2^63 negated): compared as
    // text, the same length. Longer integers are kept as f64.
    if (integer && intDigits <= 18) return Json.int(I64.parseInt(lit, 10));
    if (integer && intDigits == 19) {
      const negative = t.charCodeAt(start) == 0x2d;
      const digits = t.substring(intStart, intStart + 19);
      if (digits <= (negative ? '9223372036854775808' : '9223372036854775807')) {
        return Json.int(I64.parseInt(lit, 10));
      }
    }
    return Json.num(parseNumber(t, start, this.pos));
  }
}
