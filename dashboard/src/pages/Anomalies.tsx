import { api, type Json } from "../api";
import { AnomalyChart } from "../components/charts";
import { money, when } from "../components/format";
import { Async, Empty } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useDocumentTitle, useQueryState, useSession } from "../session";
import { Explanation } from "./Explanation";

function Detail({ anomaly }: { anomaly: Json }) {
  const explanation = useAsync(() => api.anomalyExplanation(anomaly.id), [anomaly.id]);
  return (
    <div className="grid2" data-section="anomaly-detail">
      <section className="card wide">
        <h3>
          {anomaly.metric} of {anomaly.dimension}
          {anomaly.dimension_value ? ` ${anomaly.dimension_value}` : ""}: {when(anomaly.window_start)} – {when(anomaly.window_end)}
        </h3>
        {(anomaly.details?.series ?? []).length === 0 ? <Empty>No series stored for this anomaly.</Empty> : <AnomalyChart anomaly={anomaly} />}
        <p className="muted">
          expected {Number(anomaly.expected_value).toFixed(4)}, actual {Number(anomaly.actual_value).toFixed(4)}, score {anomaly.score},{" "}
          {money(anomaly.money_involved)} involved. The band is the expected value ± 3 robust standard deviations of the series before the
          incident.
        </p>
      </section>
      <Explanation state={explanation} />
    </div>
  );
}

export function Anomalies() {
  useDocumentTitle("Anomalies");
  const { org } = useSession();
  const [q, setQ] = useQueryState({ status: "", metric: "", severity: "", id: "" });
  const list = useAsync(
    () => api.anomalies({ org_id: org.id, status: q.status, metric: q.metric, severity: q.severity, limit: 200 }),
    [org.id, q.status, q.metric, q.severity],
  );
  const selected = list.data?.find((a) => a.id === q.id) ?? list.data?.[0];
  return (
    <div className="page" data-page="anomalies">
      <h2>Anomalies</h2>
      <div className="filters">
        {(
          [
            ["status", ["", "open", "acknowledged", "closed"]],
            ["metric", ["", "cost", "requests", "tokens_per_request", "error_rate", "latency_ms"]],
            ["severity", ["", "low", "medium", "high", "critical"]],
          ] as Array<[string, string[]]>
        ).map(([name, values]) => (
          <label key={name}>
            {name}
            <select name={name} value={q[name]} onChange={(e) => setQ({ [name]: e.target.value, id: null })}>
              {values.map((v) => (
                <option key={v} value={v}>
                  {v || "any"}
                </option>
              ))}
            </select>
          </label>
        ))}
      </div>
      <Async state={list} what="anomalies" isEmpty={(a) => a.length === 0} empty="No anomalies found (hourly detection starts after eight days of history, daily after three weeks).">
        {(rows) => (
          <>
            {selected && <Detail anomaly={selected} />}
            <Table
              testId="anomalies-table"
              csvName="anomalies.csv"
              rows={rows}
              rowKey={(r) => r.id}
              columns={[
                {
                  key: "metric",
                  label: "Anomaly",
                  render: (r) => (
                    <button type="button" className={`link${r.id === selected?.id ? " selected" : ""}`} onClick={() => setQ({ id: r.id })}>
                      {r.metric} · {r.dimension}
                      {r.dimension_value ? ` ${r.dimension_value}` : ""}
                    </button>
                  ),
                },
                { key: "severity", label: "Severity", render: (r) => <span className={`sev sev-${r.severity}`}>{r.severity}</span> },
                { key: "kind", label: "Kind" },
                { key: "window_start", label: "From", render: (r) => when(r.window_start) },
                { key: "window_end", label: "To", render: (r) => when(r.window_end) },
                { key: "money_involved", label: "Money", numeric: true, render: (r) => money(r.money_involved) },
                { key: "status", label: "Status" },
              ]}
            />
          </>
        )}
      </Async>
    </div>
  );
}
