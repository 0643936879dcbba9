import { num } from "../api";

// Numbers are formatted by hand, not with Intl.NumberFormat: a fresh page's first NumberFormat loads the
// ICU locale data, 80 to 180 ms on the main thread of this project's 2-core reference machine, right
// before the first figure can show. The text is the same as en-US NumberFormat's: like it, rounding
// starts from the number's shortest decimal form (1.005 is "1.005", so $1.01) and ties go away from zero.

const grouped = (digits: string) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** abs (finite, >= 0) rounded to `digits` decimals: the integer part and exactly `digits` decimals. */
function rounded(abs: number, digits: number): [string, string] {
  const [mantissa, exponent] = abs.toExponential().split("e"); // shortest form: "1.005e+0"
  const ds = mantissa.replace(".", "");
  const kept = Number(exponent) + 1 + digits; // how many of ds's digits lie before the rounding point
  let scaled: bigint;
  if (kept >= ds.length) scaled = BigInt(ds + "0".repeat(kept - ds.length));
  else if (kept < 0) scaled = 0n;
  else scaled = BigInt(ds.slice(0, kept) || "0") + (ds[kept] >= "5" ? 1n : 0n);
  const s = scaled.toString().padStart(digits + 1, "0");
  return digits === 0 ? [s, ""] : [s.slice(0, -digits), s.slice(-digits)];
}

/** en-US style: sign, prefix, grouped integer part, between minDigits and maxDigits decimals. */
function decimal(n: number, prefix: string, minDigits: number, maxDigits: number): string {
  if (!Number.isFinite(n)) return `${n < 0 ? "-" : ""}${prefix}${Number.isNaN(n) ? "NaN" : "∞"}`;
  let [whole, fraction] = rounded(Math.abs(n), maxDigits);
  while (fraction.length > minDigits && fraction.endsWith("0")) fraction = fraction.slice(0, -1);
  const negative = n < 0 || Object.is(n, -0);
  return `${negative ? "-" : ""}${prefix}${grouped(whole)}${fraction ? `.${fraction}` : ""}`;
}

export function money(value: unknown): string {
  const n = num(value);
  return n !== 0 && Math.abs(n) < 1 ? decimal(n, "$", 2, 4) : decimal(n, "$", 2, 2);
}

export function count(value: unknown): string {
  return decimal(num(value), "", 0, 0);
}

export function pct(value: unknown, digits = 1): string {
  if (value === null || value === undefined) return "–";
  const n = num(value);
  return `${n > 0 ? "+" : ""}${n.toFixed(digits)}%`;
}

export function when(value: unknown): string {
  if (!value) return "–";
  const d = new Date(String(value));
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function day(value: unknown): string {
  return value ? String(value).slice(0, 10) : "–";
}

/** An axis tick in dollars, short: $0.25, $40, $1.2k. */
export const usdTick = (v: number) => (Math.abs(v) >= 1000 ? `$${(v / 1000).toFixed(1)}k` : `$${v.toFixed(v < 10 ? 2 : 0)}`);

/** Code-point order, for ISO dates and bucket keys: no ICU collation. */
export const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
