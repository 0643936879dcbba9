import { api, downloadCsv, num, type Json } from "../api";
import { CostBars, SeriesChart } from "../components/charts";
import { count, money } from "../components/format";
import { Async } from "../components/State";
import { Table, type Column } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useLive, useLiveReload } from "../live";
import { useDocumentTitle, useQueryState, useSession } from "../session";

// What GET /costs accepts (the rollups' dimensions; day or hour buckets).
const DIMENSIONS = ["team", "project", "provider", "model", "feature", "api_key_id", "status"];
const FILTERS = ["team", "project", "feature", "model", "provider", "api_key_id", "status"];
const STATUSES = ["", "success", "error", "timeout", "rate_limited", "cancelled"];
const TOTALS: Array<[string, string, boolean]> = [
  ["total_cost", "Cost", true],
  ["total_requests", "Requests", false],
  ["total_input_tokens", "Input tokens", false],
  ["total_output_tokens", "Output tokens", false],
  ["total_cached_tokens", "Cached tokens", false],
  ["total_reasoning_tokens", "Reasoning tokens", false],
  ["total_errors", "Errors", false],
  ["total_retries", "Retries", false],
];

function monthStart(): string {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString().slice(0, 10);
}

export function Costs() {
  useDocumentTitle("Costs");
  const { org } = useSession();
  const live = useLive();
  const [q, setQ] = useQueryState({
    start_date: monthStart(),
    end_date: new Date().toISOString().slice(0, 10),
    group_by: "model",
    granularity: "total",
    team: "",
    project: "",
    feature: "",
    model: "",
    provider: "",
    api_key_id: "",
    status: "",
  });
  const dims = q.group_by.split(",").filter((d) => DIMENSIONS.includes(d));
  const bucket = q.granularity === "total" ? null : q.granularity;
  const params = {
    org_id: org.id,
    start_date: q.start_date,
    end_date: q.end_date,
    group_by: [...dims, ...(bucket ? [bucket] : [])].join(",") || null,
    granularity: q.granularity,
    ...Object.fromEntries(FILTERS.map((f) => [f, q[f]])),
  };
  const key = JSON.stringify(params);
  const costs = useAsync(() => api.costs(params), [key]);
  useLiveReload(live.version.usage, costs.reload);

  const toggleDim = (d: string) => {
    const next = dims.includes(d) ? dims.filter((x) => x !== d) : [...dims, d];
    setQ({ group_by: next.join(",") || "none" });
  };
  const bucketKey = bucket === "hour" ? "hour" : "date";
  const columns: Column<Json>[] = [
    ...(bucket ? [{ key: bucketKey, label: bucket === "hour" ? "Hour" : "Day" }] : []),
    ...dims.map((d) => ({ key: d, label: d, render: (r: Json) => String(r[d] ?? "(none)") })),
    ...TOTALS.map(([k, label, isMoney]) => ({
      key: k,
      label,
      numeric: true,
      render: (r: Json) => (isMoney ? money(r[k]) : count(r[k])),
    })),
  ];

  return (
    <div className="page" data-page="costs">
      <h2>Costs explorer</h2>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          From <input type="date" name="start_date" value={q.start_date} onChange={(e) => setQ({ start_date: e.target.value })} />
        </label>
        <label>
          To <input type="date" name="end_date" value={q.end_date} onChange={(e) => setQ({ end_date: e.target.value })} />
        </label>
        <label>
          Buckets
          <select name="granularity" value={q.granularity} onChange={(e) => setQ({ granularity: e.target.value })}>
            <option value="total">none (totals)</option>
            <option value="day">per day</option>
            <option value="hour">per hour (31 days at most)</option>
          </select>
        </label>
        <fieldset>
          <legend>Group by</legend>
          {DIMENSIONS.map((d) => (
            <label key={d} className="check">
              <input type="checkbox" name={`group_${d}`} checked={dims.includes(d)} onChange={() => toggleDim(d)} /> {d}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Filter</legend>
          {FILTERS.filter((f) => f !== "status").map((f) => (
            <label key={f}>
              {f}
              <input
                name={`filter_${f}`}
                defaultValue={q[f]}
                placeholder="any"
                onBlur={(e) => setQ({ [f]: e.target.value.trim() })}
                onKeyDown={(e) => e.key === "Enter" && setQ({ [f]: (e.target as HTMLInputElement).value.trim() })}
              />
            </label>
          ))}
          <label>
            status
            <select name="filter_status" value={q.status} onChange={(e) => setQ({ status: e.target.value })}>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s || "any"}
                </option>
              ))}
            </select>
          </label>
        </fieldset>
      </form>
      <Async state={costs} what="costs" isEmpty={(c) => c.data.length === 0} empty="No usage matches these filters in this range.">
        {({ data, meta }) => {
          const total = data.reduce((s, r) => s + num(r.total_cost), 0);
          return (
            <>
              <p className="summary" data-testid="costs-total">
                {money(total)} over {count(data.reduce((s, r) => s + num(r.total_requests), 0))} requests,{" "}
                {meta?.start_date ?? q.start_date} – {meta?.end_date ?? q.end_date}
              </p>
              {bucket ? (
                <SeriesChart rows={data} x={bucketKey} y="total_cost" group={dims[0]} />
              ) : dims.length > 0 ? (
                <CostBars name="costs" rows={[...data].sort((a, b) => num(b.total_cost) - num(a.total_cost)).slice(0, 15)} label={dims[0]} />
              ) : null}
              <Table
                testId="costs-table"
                columns={columns}
                rows={data}
                onCsv={() => void downloadCsv("/costs", params, `costs_${q.start_date}_${q.end_date}.csv`)}
              />
            </>
          );
        }}
      </Async>
    </div>
  );
}
