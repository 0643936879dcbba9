// The overview's two charts, drawn as plain SVG by React: no chart library. Recharts (the other pages'
// charts) cost the overview a 480 kB chunk to compile and one long main-thread task to draw two small
// charts (its store registers axes and items, then the legend measures itself, in several passes);
// these few dozen elements draw in a millisecond or two, in the same render as the figures. Marks carry
// data-mark (bar, area, line) for tests and benchmarks; each hover area has a native tooltip (<title>).
import { memo, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import { num, type Json } from "../api";
import { barsHeight, CHART_HEIGHT } from "./chartSizes";
import { byKey, money, usdTick } from "./format";

const SPEND = "#2563eb";
const PROVIDER = "#16a34a";
const FORECAST = "#ea580c";
const BAND = "#93c5fd";
const AXIS = "#666";
const TICK = 11; // px, the other pages' axis labels
const LEGEND_HEIGHT = 24;
const X_AXIS_HEIGHT = 30;

/** About `count` evenly spaced round values (steps of 1, 2, 2.5 or 5 × 10^k) covering lo..hi. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / (count - 1);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * p;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** The figure's width, measured before the chart's first paint and followed on resize. */
function Figure({ name, height, label, children, legend }: {
  name: string;
  height: number;
  label: string;
  children: (width: number) => ReactNode;
  legend?: ReactNode;
}) {
  const ref = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    setWidth(Math.floor(el.getBoundingClientRect().width)); // what the observer reports: no second render
    const watch = new ResizeObserver(([e]) => setWidth(Math.floor(e.contentRect.width)));
    watch.observe(el);
    return () => watch.disconnect();
  }, []);
  const svgHeight = height - (legend ? LEGEND_HEIGHT : 0);
  return (
    <figure className="chart light-chart" data-chart={name} style={{ height }} ref={ref}>
      {width > 0 && (
        <svg width={width} height={svgHeight} role="img" aria-label={label} fontSize={TICK}>
          {children(width)}
        </svg>
      )}
      {width > 0 && legend}
    </figure>
  );
}

function Legend({ items }: { items: Array<{ name: string; color: string; line?: boolean }> }) {
  return (
    <ul className="chart-legend">
      {items.map((i) => (
        <li key={i.name}>
          <svg width={14} height={10} aria-hidden="true">
            {i.line ? (
              <line x1={0} x2={14} y1={5} y2={5} stroke={i.color} strokeWidth={2} strokeDasharray="4 3" />
            ) : (
              <rect width={14} height={10} fill={i.color} />
            )}
          </svg>
          {i.name}
        </li>
      ))}
    </ul>
  );
}

/** A value axis on the left: tick labels, their marks, and the dashed grid across the plot. */
function LeftValueAxis({ ticks, y, left, right, grid }: {
  ticks: number[];
  y: (v: number) => number;
  left: number;
  right: number;
  grid: boolean;
}) {
  return (
    <g className="axis axis-y">
      {grid && ticks.map((t) => <line key={`g${t}`} x1={left} x2={right} y1={y(t)} y2={y(t)} stroke="#ccc" strokeDasharray="3 3" />)}
      <line x1={left} x2={left} y1={y(ticks[0])} y2={y(ticks[ticks.length - 1])} stroke={AXIS} />
      {ticks.map((t) => (
        <g key={t}>
          <line x1={left - 6} x2={left} y1={y(t)} y2={y(t)} stroke={AXIS} />
          <text x={left - 8} y={y(t)} dy="0.355em" textAnchor="end" fill={AXIS}>
            {usdTick(t)}
          </text>
        </g>
      ))}
    </g>
  );
}

type Day = { day: string; spend?: number; expected?: number; lower?: number; upper?: number };

/** Spend per day this month, then the forecast's expected days with their 80% band. */
export const SpendForecastChart = memo(function SpendForecastChart({ days, daily }: { days: Json[]; daily: Json[] }) {
  const byDay = new Map<string, Day>();
  for (const d of days) byDay.set(String(d.date), { day: String(d.date).slice(5), spend: num(d.cost_usd) });
  for (const f of daily) {
    const key = String(f.day);
    const row = byDay.get(key) ?? { day: key.slice(5) };
    row.expected = num(f.expected);
    row.lower = num(f.lower_80);
    row.upper = num(f.upper_80);
    byDay.set(key, row);
  }
  const data = [...byDay.entries()].sort(([a], [b]) => byKey(a, b)).map(([, v]) => v);
  const values = data.flatMap((d) => [d.spend ?? 0, d.expected ?? 0, d.lower ?? 0, d.upper ?? 0]);
  const ticks = niceTicks(Math.min(0, ...values), Math.max(0, ...values));
  const legend = (
    <Legend
      items={[
        { name: "spend", color: SPEND },
        { name: "forecast 80%", color: BAND },
        { name: "forecast", color: FORECAST, line: true },
      ]}
    />
  );
  return (
    <Figure name="spend-by-day" height={CHART_HEIGHT} label="Spend by day and forecast" legend={legend}>
      {(width) => {
        const top = 8;
        const bottom = CHART_HEIGHT - LEGEND_HEIGHT - X_AXIS_HEIGHT;
        const left = 8 + 56;
        const right = width - 8;
        const band = (right - left) / Math.max(1, data.length);
        const x = (i: number) => left + band * (i + 0.5);
        const lo = ticks[0];
        const hi = ticks[ticks.length - 1];
        const y = (v: number) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
        const barWidth = band * 0.8;
        // Every k-th day's label, so that the labels (about 40 px each) never overlap.
        const every = Math.max(1, Math.ceil(40 / band));
        const ranged = data.map((d, i) => [d, i] as const).filter(([d]) => d.upper !== undefined);
        const expected = data.map((d, i) => [d, i] as const).filter(([d]) => d.expected !== undefined);
        return (
          <>
            <LeftValueAxis ticks={ticks} y={y} left={left} right={right} grid />
            <g className="axis axis-x">
              <line x1={left} x2={right} y1={bottom} y2={bottom} stroke={AXIS} />
              {data.map((d, i) =>
                i % every === (data.length - 1) % every ? (
                  <g key={d.day}>
                    <line x1={x(i)} x2={x(i)} y1={bottom} y2={bottom + 6} stroke={AXIS} />
                    <text x={x(i)} y={bottom + 8} dy="0.71em" textAnchor="middle" fill={AXIS}>
                      {d.day}
                    </text>
                  </g>
                ) : null,
              )}
            </g>
            {data.map((d, i) =>
              d.spend ? (
                <rect
                  key={d.day}
                  data-mark="bar"
                  x={x(i) - barWidth / 2}
                  width={barWidth}
                  y={Math.min(y(d.spend), y(0))}
                  height={Math.abs(y(0) - y(d.spend))}
                  fill={SPEND}
                />
              ) : null,
            )}
            {ranged.length > 0 && (
              <path
                data-mark="area"
                d={
                  ranged.map(([d, i], k) => `${k ? "L" : "M"}${x(i)},${y(d.upper!)}`).join("") +
                  [...ranged].reverse().map(([d, i]) => `L${x(i)},${y(d.lower!)}`).join("") +
                  "Z"
                }
                fill={BAND}
                fillOpacity={0.4}
                stroke="none"
              />
            )}
            {expected.length > 0 && (
              <path
                data-mark="line"
                d={expected.map(([d, i], k) => `${k ? "L" : "M"}${x(i)},${y(d.expected!)}`).join("")}
                fill="none"
                stroke={FORECAST}
                strokeWidth={1.5}
                strokeDasharray="4 3"
              />
            )}
            {data.map((d, i) => (
              <rect key={`h${d.day}`} fill="transparent" x={x(i) - band / 2} width={band} y={top} height={bottom - top}>
                <title>
                  {[
                    d.day,
                    d.spend !== undefined ? `spend: ${money(d.spend)}` : null,
                    d.upper !== undefined ? `forecast 80%: ${money(d.lower)} – ${money(d.upper)}` : null,
                    d.expected !== undefined ? `forecast: ${money(d.expected)}` : null,
                  ]
                    .filter(Boolean)
                    .join("\n")}
                </title>
              </rect>
            ))}
          </>
        );
      }}
    </Figure>
  );
});

/** Horizontal bars: one per name, its cost. */
export const CostBars = memo(function CostBars({ name, rows, label }: { name: string; rows: Json[]; label: string }) {
  const data = rows.map((r) => ({ name: String(r[label] ?? "(none)"), cost: num(r.cost_usd ?? r.total_cost) }));
  const height = barsHeight(data.length);
  const costs = data.map((d) => d.cost);
  const ticks = niceTicks(Math.min(0, ...costs), Math.max(0, ...costs));
  return (
    <Figure name={name} height={height} label={`Spend by ${label}`}>
      {(width) => {
        const top = 4;
        const bottom = height - 4 - X_AXIS_HEIGHT;
        const left = 8 + 120;
        const right = width - 16;
        const lo = ticks[0];
        const hi = ticks[ticks.length - 1];
        const x = (v: number) => left + ((v - lo) / (hi - lo)) * (right - left);
        const band = (bottom - top) / Math.max(1, data.length);
        const y = (i: number) => top + band * (i + 0.5);
        const thick = band * 0.8;
        return (
          <>
            <g className="axis axis-x">
              <line x1={left} x2={right} y1={bottom} y2={bottom} stroke={AXIS} />
              {ticks.map((t) => (
                <g key={t}>
                  <line x1={x(t)} x2={x(t)} y1={bottom} y2={bottom + 6} stroke={AXIS} />
                  <text x={x(t)} y={bottom + 8} dy="0.71em" textAnchor="middle" fill={AXIS}>
                    {usdTick(t)}
                  </text>
                </g>
              ))}
            </g>
            <g className="axis axis-y">
              <line x1={left} x2={left} y1={top} y2={bottom} stroke={AXIS} />
              {data.map((d, i) => (
                <text key={i} x={left - 8} y={y(i)} dy="0.355em" textAnchor="end" fill={AXIS}>
                  {d.name}
                </text>
              ))}
            </g>
            {data.map((d, i) => (
              <rect
                key={i}
                data-mark="bar"
                x={Math.min(x(0), x(d.cost))}
                width={Math.abs(x(d.cost) - x(0))}
                y={y(i) - thick / 2}
                height={thick}
                fill={PROVIDER}
              >
                <title>{`${d.name}: ${money(d.cost)}`}</title>
              </rect>
            ))}
          </>
        );
      }}
    </Figure>
  );
});
