import { num } from "../api";

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 });
const usdSmall = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 4 });
const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function money(value: unknown): string {
  const n = num(value);
  return n !== 0 && Math.abs(n) < 1 ? usdSmall.format(n) : usd.format(n);
}

export function count(value: unknown): string {
  return int.format(num(value));
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
