// The other pages' charts, all Recharts (SVG, declarative, drawn without animation so a screenshot or a
// paint timer sees the final picture); the overview draws its two itself (overviewCharts.tsx). Each wraps
// itself in a figure marked data-chart for tests and benchmarks.
import {
  Area,
  Bar,
  BarChart,
  CartesianGrid,
  ComposedChart,
  Legend,
  Line,
  LineChart,
  ReferenceArea,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { memo, useLayoutEffect, useRef, useState } from "react";
import { num, type Json } from "../api";
import { barsHeight, CHART_HEIGHT } from "./chartSizes";
import { byKey, money, usdTick } from "./format";

// ISO dates and timestamps sort as plain strings; localeCompare would load ICU's collation on first use.
const COLORS = ["#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#dc2626", "#ca8a04", "#4b5563"];

// The chart's first render is at the figure's measured size: started at a guessed size, Recharts would
// draw everything twice (once guessed, once measured) before the first paint. ResponsiveContainer still
// follows later resizes.
function Figure({ name, children, height = CHART_HEIGHT }: { name: string; children: React.ReactElement; height?: number }) {
  const ref = useRef<HTMLElement>(null);
  const [size, setSize] = useState<{ width: number; height: number } | null>(null);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el) setSize({ width: el.clientWidth, height: el.clientHeight || height });
  }, [height]);
  return (
    <figure className="chart" data-chart={name} style={{ height }} ref={ref}>
      {size && (
        <ResponsiveContainer width="100%" height="100%" initialDimension={size}>
          {children}
        </ResponsiveContainer>
      )}
    </figure>
  );
}

// Memoised: a page re-renders as each of its sections answers, and redrawing a chart whose data did not
// change is most of such a render's work.

/** Horizontal bars: one per name, its cost. */
export const CostBars = memo(function CostBars({ name, rows, label }: { name: string; rows: Json[]; label: string }) {
  const data = rows.map((r) => ({ name: String(r[label] ?? "(none)"), cost: num(r.cost_usd ?? r.total_cost) }));
  return (
    <Figure name={name} height={barsHeight(data.length)}>
      <BarChart data={data} layout="vertical" margin={{ top: 4, right: 16, bottom: 4, left: 8 }}>
        <XAxis type="number" tickFormatter={usdTick} fontSize={11} />
        <YAxis type="category" dataKey="name" width={120} fontSize={11} />
        <Tooltip formatter={(v: any) => money(v)} />
        <Bar dataKey="cost" fill={COLORS[1]} isAnimationActive={false} />
      </BarChart>
    </Figure>
  );
});

/** Several series over buckets (one line per group value). */
export function SeriesChart({ rows, x, y, group }: { rows: Json[]; x: string; y: string; group?: string }) {
  const buckets = new Map<string, Json>();
  const groups = new Set<string>();
  for (const r of rows) {
    const key = String(r[x]);
    const g = group ? String(r[group] ?? "(none)") : y;
    groups.add(g);
    const row = buckets.get(key) ?? { bucket: key.length > 10 ? key.slice(5, 16).replace("T", " ") : key };
    row[g] = num(row[g]) + num(r[y]);
    buckets.set(key, row);
  }
  const data = [...buckets.entries()].sort(([a], [b]) => byKey(a, b)).map(([, v]) => v);
  const names = [...groups].slice(0, 8);
  return (
    <Figure name="series">
      <LineChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey="bucket" fontSize={11} />
        <YAxis tickFormatter={y.includes("cost") ? usdTick : undefined} fontSize={11} width={56} />
        <Tooltip formatter={(v: any) => (y.includes("cost") ? money(v) : v)} />
        <Legend />
        {names.map((n, i) => (
          <Line key={n} dataKey={n} stroke={COLORS[i % COLORS.length]} dot={false} isAnimationActive={false} />
        ))}
      </LineChart>
    </Figure>
  );
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function mad(xs: number[]): number {
  const m = median(xs);
  return median(xs.map((x) => Math.abs(x - m)));
}

/** An anomaly: the metric's recent series, what was expected during the incident, the incident shaded. */
export function AnomalyChart({ anomaly }: { anomaly: Json }) {
  const details = anomaly.details ?? {};
  const series: Json[] = details.series ?? [];
  const expected: number[] = details.expected_series ?? [];
  const start = new Date(anomaly.window_start).getTime();
  const end = new Date(anomaly.window_end).getTime();
  // Band: expected ± 3 robust standard deviations (1.4826 × MAD) of the series before the incident.
  const before = series.filter((p) => new Date(p.bucket).getTime() < start).map((p) => num(p.value));
  const spread = 3 * 1.4826 * mad(before);
  let k = 0;
  const data = series.map((p) => {
    const t = new Date(p.bucket).getTime();
    const row: Json = { t, label: String(p.bucket).slice(5, 16).replace("T", " "), actual: num(p.value) };
    if (t >= start && t < end && k < expected.length) {
      const e = num(expected[k++]);
      row.expected = e;
      row.band = [Math.max(0, e - spread), e + spread];
    }
    return row;
  });
  const inWindow = data.filter((d) => d.t >= start && d.t < end);
  return (
    <Figure name="anomaly">
      <ComposedChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey="label" fontSize={11} />
        <YAxis fontSize={11} width={56} />
        <Tooltip />
        <Legend />
        {inWindow.length > 0 && (
          <ReferenceArea x1={inWindow[0].label} x2={inWindow[inWindow.length - 1].label} fill="#fecaca" fillOpacity={0.5} label="incident" />
        )}
        <Area dataKey="band" name="expected band" fill="#bbf7d0" stroke="none" fillOpacity={0.6} isAnimationActive={false} />
        <Line dataKey="actual" name={anomaly.metric} stroke={COLORS[0]} dot={false} isAnimationActive={false} />
        <Line dataKey="expected" name="expected" stroke={COLORS[1]} strokeDasharray="4 3" dot={false} isAnimationActive={false} />
      </ComposedChart>
    </Figure>
  );
}

/** A recommendation's money: what the scope costs a month now, after the change, and what is saved. */
export function EvidenceChart({ rec }: { rec: Json }) {
  const data = [
    { name: "current", value: num(rec.current_monthly_cost) },
    { name: "projected", value: num(rec.projected_monthly_cost) },
    { name: "savings", value: num(rec.estimated_monthly_savings) },
    ...(rec.realised_monthly_savings != null ? [{ name: "realised", value: num(rec.realised_monthly_savings) }] : []),
  ];
  return (
    <Figure name="evidence" height={180}>
      <BarChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey="name" fontSize={11} />
        <YAxis tickFormatter={usdTick} fontSize={11} width={56} />
        <Tooltip formatter={(v: any) => money(v)} />
        <Bar dataKey="value" name="per month" fill={COLORS[3]} isAnimationActive={false} />
      </BarChart>
    </Figure>
  );
}

/** Reconciliation: what we tracked and what the provider billed each day, the gap between them as bars. */
export function TrackedBilledChart({ series }: { series: Json[] }) {
  const data = series.map((d) => ({
    day: String(d.date).slice(5),
    tracked: num(d.tracked_cost),
    billed: num(d.billed_cost),
    gap: num(d.gap),
  }));
  return (
    <Figure name="tracked-billed">
      <ComposedChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey="day" fontSize={11} />
        <YAxis tickFormatter={usdTick} fontSize={11} width={56} />
        <Tooltip formatter={(v: any) => money(v)} />
        <Legend />
        <Bar dataKey="gap" name="gap (billed − tracked)" fill={COLORS[2]} isAnimationActive={false} />
        <Line dataKey="tracked" name="tracked" stroke={COLORS[0]} dot={false} isAnimationActive={false} />
        <Line dataKey="billed" name="billed" stroke={COLORS[1]} dot={false} isAnimationActive={false} />
      </ComposedChart>
    </Figure>
  );
}

/** The gap by cause: one bar per cause with its amount (negative when we tracked more than was billed). */
export function CauseBars({ rows }: { rows: Array<{ cause: string; amount: number }> }) {
  return (
    <Figure name="gap-by-cause" height={barsHeight(rows.length)}>
      <BarChart data={rows} layout="vertical" margin={{ top: 4, right: 16, bottom: 4, left: 8 }}>
        <XAxis type="number" tickFormatter={usdTick} fontSize={11} />
        <YAxis type="category" dataKey="cause" width={150} fontSize={11} />
        <Tooltip formatter={(v: any) => money(v)} />
        <Bar dataKey="amount" name="USD" fill={COLORS[3]} isAnimationActive={false} />
      </BarChart>
    </Figure>
  );
}
