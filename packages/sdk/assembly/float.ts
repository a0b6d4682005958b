/**
 * Reading a JSON number literal as the f64 `JSON.parse` reads: the double nearest to the exact
 * decimal value, ties to the one with an even significand (IEEE 754 round-to-nearest-even), ±0
 * below half the smallest subnormal and ±Infinity from the halfway point above the largest
 * finite double on.
 *
 * AssemblyScript's `F64.parseFloat` is not used: it loses a power of ten for some inputs
 * (4.996563920182973301e52 came back as 4.996563920182973e40) and is one unit in the last place
 * off for others, so an app could read another amount than its client (and JSON.parse) did.
 *
 * The method is William D. Clinger's, "How to Read Floating Point Numbers Accurately" (PLDI
 * 1990): the fast path when the decimal significand and the power of ten are both exact doubles,
 * and otherwise an approximation that is then corrected with exact big-integer arithmetic, as
 * in his Algorithm R, here by comparing the decimal value with the exact midpoints between
 * neighbouring doubles and moving one unit in the last place at a time until the candidate is
 * the nearest. Floating-point format and rounding: IEEE 754-2019 (binary64).
 *
 * Work per number is bounded: at most `MAX_DIGITS` + 1 significant digits are kept, and decimal
 * exponents beyond what any double needs answer at once; the cost of scanning the text itself is
 * linear in its length.
 */

/**
 * Significant digits kept. Every exact midpoint between two adjacent doubles is h × 2^g with h
 * odd, h < 2^54 and g ≥ −1075, so it equals h × 5^−g / 10^−g when g < 0: it has at most
 * 768 significant decimal digits (the most, 768, at g = −1075, e.g. (2^54 − 1) × 2^−1075, the
 * midpoint just above the largest double of the smallest normal binade). Suppose the literal's
 * digits after the first `MAX_DIGITS` are replaced by a single 1 when any of them is nonzero
 * (and dropped when all are zero). Call u the place value of the `MAX_DIGITS`-th digit. The
 * exact value and the value read then lie in the same interval [T, T + u) and are equal or both
 * strictly inside it. A midpoint at or above T starts no lower than the literal's first digit,
 * so its last digit is no lower than u: it is a multiple of u. So no midpoint lies strictly
 * between the two values or on just one of them: both round to the same double.
 */
const MAX_DIGITS: i32 = 800;

/** Kept digits (0–9), most significant first; one more than `MAX_DIGITS` for the sticky 1. */
const digitBuf: usize = memory.data(MAX_DIGITS + 1);

/** 10^0 … 10^22: every one is an exact double (5^22 < 2^53), which the fast path relies on. */
const EXACT_POW10: StaticArray<f64> = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
  1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/** 10^(16k) for k = 0 … 19, each the nearest double (the compiler reads the literals). */
const POW10_BY_16: StaticArray<f64> = [
  1e0, 1e16, 1e32, 1e48, 1e64, 1e80, 1e96, 1e112, 1e128, 1e144, 1e160, 1e176, 1e192, 1e208, 1e224,
  1e240, 1e256, 1e272, 1e288, 1e304,
];

const MAX_FINITE_BITS: u64 = 0x7fefffffffffffff;
const INFINITY_BITS: u64 = 0x7ff0000000000000;
const HIDDEN_BIT: u64 = 1 << 52;

/**
 * The f64 nearest to the JSON number literal `t[start, end)` (`-? int frac? exp?`, RFC 8259,
 * already checked by the caller).
 */
export function parseNumber(t: string, start: i32, end: i32): f64 {
  let pos = start;
  let negative = false;
  if (pos < end && t.charCodeAt(pos) == 0x2d) {
    negative = true;
    pos++;
  }

  // The value is 0.d1 d2 … dn × 10^point, d1 ≠ 0. `point` starts as the number of integer digits
  // from the first nonzero one, less the zeros between the decimal point and a first nonzero
  // fraction digit.
  let n: i32 = 0;
  let point: i64 = 0;
  let sticky = false;
  let seenNonzero = false;
  let inFraction = false;
  while (pos < end) {
    const c = t.charCodeAt(pos);
    if (c == 0x2e) {
      inFraction = true;
      pos++;
      continue;
    }
    if (c < 0x30 || c > 0x39) break;
    pos++;
    const d = c - 0x30;
    if (!seenNonzero) {
      if (d == 0) {
        if (inFraction) point--;
        continue;
      }
      seenNonzero = true;
    }
    if (!inFraction) point++;
    if (n < MAX_DIGITS) store<u8>(digitBuf + <usize>(n++), <u8>d);
    else if (d != 0) sticky = true;
  }

  // The exponent saturates: anything beyond 10^9 is far past both ends of the double range,
  // and stopping there keeps `point` well inside an i64 however long the literal is.
  let exp: i64 = 0;
  if (pos < end && (t.charCodeAt(pos) | 0x20) == 0x65) {
    pos++;
    let expNegative = false;
    if (pos < end) {
      const s = t.charCodeAt(pos);
      if (s == 0x2b || s == 0x2d) {
        expNegative = s == 0x2d;
        pos++;
      }
    }
    while (pos < end) {
      const c = t.charCodeAt(pos);
      if (c < 0x30 || c > 0x39) break;
      if (exp < 1_000_000_000) exp = exp * 10 + (c - 0x30);
      pos++;
    }
    if (expNegative) exp = -exp;
  }

  if (n == 0) return negative ? -0.0 : 0.0;
  if (sticky) {
    store<u8>(digitBuf + <usize>(n++), 1);
  } else {
    // Trailing zeros change nothing (the value is 0.d1…dn × 10^point) and would only make the
    // integers below longer.
    while (load<u8>(digitBuf + <usize>(n - 1)) == 0) n--;
  }

  point += exp;
  // The value is in [10^(point − 1), 10^point). From 10^309 on it is above every double (and
  // above the halfway point past the largest, ≈ 1.7976931348623158e308): Infinity. Below
  // 10^−324 it is under half the smallest subnormal (2^−1074 ≈ 4.94e−324): zero.
  if (point > 309) return negative ? -Infinity : Infinity;
  if (point < -323) return negative ? -0.0 : 0.0;

  // From here on the value is D × 10^e with D the n-digit integer d1…dn; −1124 ≤ e ≤ 309.
  const e = <i32>point - n;
  const head = n < 19 ? n : 19;
  let lead: u64 = 0;
  for (let i = 0; i < head; i++) lead = lead * 10 + load<u8>(digitBuf + <usize>i);

  const x = fastPath(lead, n, e);
  if (x >= 0) return negative ? -x : x;

  const bits = nearest(approximate(lead, e + (n - head)), n, e);
  const r = reinterpret<f64>(bits);
  return negative ? -r : r;
}

/**
 * Clinger's fast path: when D is an exact double (D ≤ 2^53) and so is 10^|e|, D × 10^e is one
 * correctly rounded IEEE operation, so its result is the nearest double. A positive exponent
 * larger than 22 can still be used when part of it can move into D and keep D exact. Returns −1
 * when the path does not apply.
 */
function fastPath(lead: u64, n: i32, e: i32): f64 {
  if (n > 19 || lead > HIDDEN_BIT << 1) return -1;
  const d = <f64>lead;
  if (e == 0) return d;
  if (e < 0) return e >= -22 ? d / unchecked(EXACT_POW10[-e]) : -1;
  if (e <= 22) return d * unchecked(EXACT_POW10[e]);
  // D × 10^(e − 22) is an integer; while it stays below 10^15 (< 2^53) it is exact.
  if (n + (e - 22) <= 15) return d * unchecked(EXACT_POW10[e - 22]) * 1e22;
  return -1;
}

/** 10^k for 0 ≤ k ≤ 308, within about one unit in the last place. */
function approxPow10(k: i32): f64 {
  return unchecked(POW10_BY_16[k >> 4]) * unchecked(EXACT_POW10[k & 15]);
}

/**
 * A starting candidate (bits of a non-negative finite double) for lead × 10^k, where `lead` is
 * the first (up to 19) digits: a few rounding errors away from the answer. Only its nearness
 * matters for speed; `nearest` makes it exact.
 */
function approximate(lead: u64, k: i32): u64 {
  let x = <f64>lead;
  if (k >= 0) {
    x *= approxPow10(k);
  } else if (k >= -308) {
    x /= approxPow10(-k);
  } else {
    // Two steps, so that the first quotient stays a normal double (lead ≥ 1, so x / 10^300 is
    // at least 10^−300) and only the last rounding can fall into the subnormal range.
    x = x / approxPow10(300) / approxPow10(-k - 300);
  }
  const bits = reinterpret<u64>(x);
  // Overflow in the estimate (a value near the largest double): start from the largest.
  return bits >= INFINITY_BITS ? MAX_FINITE_BITS : bits;
}

/**
 * The bits of the double nearest to D × 10^e (D = the n kept digits), starting at candidate
 * `bits`: while the value is above the midpoint to the next double (or on it with the candidate
 * odd), move up; while it is below the midpoint to the previous one (or on it, odd), move down.
 * The two tests cannot both hold, so this ends; from a close candidate it takes a few steps.
 */
function nearest(bits: u64, n: i32, e: i32): u64 {
  loadDecimal(n, e);
  for (;;) {
    // The candidate is m × 2^q.
    const field = <i32>(bits >> 52);
    const m = field == 0 ? bits : (bits & (HIDDEN_BIT - 1)) | HIDDEN_BIT;
    const q = (field == 0 ? 1 : field) - 1075;
    // Midpoint to the next double above, (m + 1) × 2^q (or 2^1024 past the largest, which is
    // where Infinity starts): (2m + 1) × 2^(q − 1). Crossing into the next binade changes nothing.
    const up = compareWithDecimal((m << 1) + 1, q - 1);
    if (up > 0 || (up == 0 && (bits & 1) != 0)) {
      bits++;
      if (bits == INFINITY_BITS) return bits;
      continue;
    }
    if (bits == 0) return bits;
    // Midpoint to the next double below. At the bottom of a normal binade (m = 2^52, above the
    // smallest normal binade) the one below has half the spacing: (4m − 1) × 2^(q − 2).
    const down =
      m == HIDDEN_BIT && field > 1
        ? compareWithDecimal((m << 2) - 1, q - 2)
        : compareWithDecimal((m << 1) - 1, q - 1);
    if (down < 0 || (down == 0 && (bits & 1) != 0)) {
      bits--;
      continue;
    }
    return bits;
  }
}

// --- Exact comparison -------------------------------------------------------------------------

/**
 * Limbs of the big integers below. The largest one built is about 2^2668: D < 10^801 (2661 bits),
 * or a midpoint's odd part (< 2^55) times 5^1124 (2610 bits), each compared with the other side
 * shifted until the two are within a few bits of each other (the candidate is near the value).
 * 96 × 32 = 3072 bits leaves room.
 */
const LIMBS: i32 = 96;

/**
 * A non-negative integer in static memory (not a managed object: the loops below then touch
 * only locals and linear memory): little-endian 32-bit limbs, `len` of them used, no leading
 * zero limb.
 */
class Big {
  len: i32 = 0;
  constructor(public ptr: usize) {}

  setSmall(v: u32): void {
    store<u32>(this.ptr, v);
    this.len = v == 0 ? 0 : 1;
  }

  copy(from: Big): void {
    memory.copy(this.ptr, from.ptr, <usize>from.len << 2);
    this.len = from.len;
  }

  /** this = this × f + add, f and add below 2^32. */
  mulAdd(f: u32, add: u32): void {
    const p = this.ptr;
    const end = p + (<usize>this.len << 2);
    const factor = <u64>f;
    let carry = <u64>add;
    for (let a = p; a < end; a += 4) {
      const x = <u64>load<u32>(a) * factor + carry;
      store<u32>(a, <u32>x);
      carry = x >> 32;
    }
    if (carry != 0) {
      store<u32>(end, <u32>carry);
      this.len++;
    }
  }

  /** this = this × 5^k. 5^13 is the largest power of five below 2^32. */
  mulPow5(k: i32): void {
    while (k >= 13) {
      this.mulAdd(1220703125, 0);
      k -= 13;
    }
    let f: u32 = 1;
    while (k-- > 0) f *= 5;
    if (f != 1) this.mulAdd(f, 0);
  }

  /**
   * this = a × v, v below 2^64 (and this not a): a times the low half of v, then a times the
   * high half added one limb further up.
   */
  mulU64(a: Big, v: u64): void {
    this.copy(a);
    this.mulAdd(<u32>v, 0);
    const hi = v >> 32;
    const n = a.len;
    if (hi == 0 || n == 0) return;
    const src = a.ptr;
    const dst = this.ptr + 4;
    let len = this.len;
    // Each sum is below 2^32 + 2^32 + 2^33: it fits in 64 bits.
    let carry: u64 = 0;
    for (let i = 0; i < n; i++) {
      const off = <usize>i << 2;
      const x = <u64>load<u32>(src + off) * hi;
      const cur = i + 1 < len ? <u64>load<u32>(dst + off) : 0;
      const s = cur + (x & 0xffffffff) + carry;
      store<u32>(dst + off, <u32>s);
      carry = (s >> 32) + (x >> 32);
    }
    let j = n + 1;
    if (j > len) len = j;
    while (carry != 0) {
      const at = this.ptr + (<usize>j << 2);
      const s = (j < len ? <u64>load<u32>(at) : 0) + carry;
      store<u32>(at, <u32>s);
      carry = s >> 32;
      j++;
      if (j > len) len = j;
    }
    while (len > 0 && load<u32>(this.ptr + (<usize>(len - 1) << 2)) == 0) len--;
    this.len = len;
  }

  /** this = this × 2^s. */
  shiftLeft(s: i32): void {
    const len = this.len;
    if (len == 0 || s == 0) return;
    const p = this.ptr;
    const words = <usize>(s >> 5) << 2;
    const up = <u32>(s & 31);
    let top = len;
    if (up == 0) {
      memory.copy(p + words, p, <usize>len << 2);
    } else {
      const down = 32 - up;
      let a = p + (<usize>(len - 1) << 2);
      const spill = load<u32>(a) >> down;
      if (spill != 0) {
        store<u32>(a + 4 + words, spill);
        top++;
      }
      for (; a > p; a -= 4) store<u32>(a + words, (load<u32>(a) << up) | (load<u32>(a - 4) >> down));
      store<u32>(p + words, load<u32>(p) << up);
    }
    memory.fill(p, 0, words);
    this.len = top + <i32>(words >> 2);
  }

  /** −1, 0 or 1 as this is below, equal to or above `o`. */
  compare(o: Big): i32 {
    if (this.len != o.len) return this.len < o.len ? -1 : 1;
    for (let i = this.len - 1; i >= 0; i--) {
      const off = <usize>i << 2;
      const a = load<u32>(this.ptr + off);
      const b = load<u32>(o.ptr + off);
      if (a != b) return a < b ? -1 : 1;
    }
    return 0;
  }
}

/**
 * The decimal value D × 10^e = D × 5^e × 2^e, kept as `decimalPart` × 2^`decimalTwos`, while
 * a midpoint h × 2^g is compared as h × `midpointFives` × 2^g: when e < 0 both sides were
 * multiplied by 5^−e, so that everything is an integer.
 */
const decimalPart = new Big(memory.data(LIMBS << 2, 8));
const midpointFives = new Big(memory.data(LIMBS << 2, 8));
const left = new Big(memory.data(LIMBS << 2, 8));
const right = new Big(memory.data(LIMBS << 2, 8));
let decimalTwos: i32 = 0;

/** Builds D from the n kept digits, nine at a time (10^9 < 2^32), and the powers of five. */
function loadDecimal(n: i32, e: i32): void {
  const d = decimalPart;
  d.setSmall(0);
  let i = 0;
  while (i < n) {
    let chunk: u32 = 0;
    let scale: u32 = 1;
    const stop = i + 9 < n ? i + 9 : n;
    for (; i < stop; i++) {
      chunk = chunk * 10 + load<u8>(digitBuf + <usize>i);
      scale *= 10;
    }
    if (d.len == 0) d.setSmall(chunk);
    else d.mulAdd(scale, chunk);
  }
  midpointFives.setSmall(1);
  if (e >= 0) d.mulPow5(e);
  else midpointFives.mulPow5(-e);
  decimalTwos = e;
}

/** Compares D × 10^e (loaded) with h × 2^g exactly: −1, 0 or 1. */
function compareWithDecimal(h: u64, g: i32): i32 {
  left.copy(decimalPart);
  right.mulU64(midpointFives, h);
  const diff = decimalTwos - g;
  if (diff > 0) left.shiftLeft(diff);
  else if (diff < 0) right.shiftLeft(-diff);
  return left.compare(right);
}
