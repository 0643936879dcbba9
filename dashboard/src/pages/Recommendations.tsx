import { useState } from "react";
import { api, ApiError, num, type Json } from "../api";
import { EvidenceChart } from "../components/charts";
import { money, when } from "../components/format";
import { Async, Empty } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useLive, useLiveReload } from "../live";
import { useDocumentTitle, useQueryState, useSession } from "../session";
import { Explanation } from "./Explanation";

function Consensus({ id }: { id: string }) {
  const record = useAsync(
    () =>
      api.consensus(id).catch((exc) => {
        if (exc instanceof ApiError && exc.status === 404) return { runs: [] } as Json;
        throw exc;
      }),
    [id],
  );
  return (
    <section className="card wide" data-section="consensus">
      <h3>Consensus review</h3>
      <Async state={record} what="the consensus record" isEmpty={(r) => (r.runs ?? []).length === 0} empty="Not reviewed by the consensus panel.">
        {(r) => (
          <>
            {(r.runs as Json[]).map((run) => (
              <div key={run.id} className="run" data-run={run.status}>
                <p>
                  <strong>{run.verdict ?? run.status}</strong> after {run.round_count} round(s), score {run.score ?? "–"}; triggers{" "}
                  {(run.triggers ?? []).join(", ")}; {run.call_count} calls, {money(run.cost_usd)}; {when(run.started_at)}
                  {run.stop_reason ? ` (${run.stop_reason})` : ""}
                </p>
                {run.description && <p>{run.description}</p>}
                {(run.rounds as Json[]).map((round) => (
                  <div key={round.round} data-round={round.round}>
                    <h4>
                      Round {round.round}: score {round.score} (verdicts {round.verdict_agreement}, savings {round.savings_agreement}, key points{" "}
                      {round.key_point_overlap})
                    </h4>
                    <Table
                      csvName={`consensus_round_${round.round}.csv`}
                      rows={round.positions ?? []}
                      columns={[
                        { key: "role", label: "Agent" },
                        { key: "model", label: "Model", render: (p) => `${p.provider}:${p.model}` },
                        { key: "verdict", label: "Verdict" },
                        { key: "adjusted_monthly_savings", label: "Savings/month", numeric: true, render: (p) => money(p.adjusted_monthly_savings) },
                        { key: "confidence", label: "Confidence", numeric: true },
                        { key: "key_points", label: "Key points", render: (p) => (p.key_points ?? []).map((k: Json) => k.point ?? k.text ?? JSON.stringify(k)).join("; ") },
                        { key: "cost_usd", label: "Cost", numeric: true, render: (p) => money(p.cost_usd) },
                      ]}
                    />
                  </div>
                ))}
                {(run.caveats ?? []).length > 0 && <p className="muted">Caveats: {(run.caveats as unknown[]).map(String).join("; ")}</p>}
                {(run.dissent ?? []).length > 0 && <p className="muted">Dissent: {JSON.stringify(run.dissent)}</p>}
              </div>
            ))}
          </>
        )}
      </Async>
    </section>
  );
}

function Detail({ rec, onChange }: { rec: Json; onChange: () => void }) {
  const { can } = useSession();
  const explanation = useAsync(() => api.recommendationExplanation(rec.id), [rec.id]);
  const [share, setShare] = useState(100);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
      onChange();
    } catch (exc) {
      setError((exc as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const actionable = can("recommendations.write") && (rec.status === "open" || rec.status === "under_review");
  return (
    <div className="grid2" data-section="recommendation-detail" data-status={rec.status}>
      <section className="card">
        <h3>{rec.title}</h3>
        <p>{rec.description}</p>
        <p>
          <strong data-testid="savings">{money(rec.estimated_monthly_savings)}</strong>/month ({money(num(rec.estimated_monthly_savings) * 12)}/year),
          confidence {rec.confidence}, {rec.priority} priority, {rec.risk} risk, {rec.effort} effort; status <strong>{rec.status}</strong>
        </p>
        <EvidenceChart rec={rec} />
        {(rec.implementation_steps ?? []).length > 0 && (
          <ol>
            {(rec.implementation_steps as unknown[]).map((s, i) => (
              <li key={i}>{typeof s === "string" ? s : JSON.stringify(s)}</li>
            ))}
          </ol>
        )}
        {error && (
          <p className="state error" role="alert">
            {error}
          </p>
        )}
        {actionable && (
          <div className="actions">
            {rec.suggested_rule && (
              <>
                <label>
                  traffic share %{" "}
                  <input type="number" min={1} max={100} value={share} onChange={(e) => setShare(Number(e.target.value))} style={{ width: "5em" }} />
                </label>
                <button type="button" disabled={busy} data-action="apply" onClick={() => void run(() => api.applyRecommendation(rec.id, share / 100))}>
                  Apply
                </button>
              </>
            )}
            <button
              type="button"
              className="secondary"
              disabled={busy}
              data-action="dismiss"
              onClick={() => {
                const reason = prompt("Why dismiss it? (the engine will not raise this pattern again)");
                if (reason) void run(() => api.dismissRecommendation(rec.id, reason));
              }}
            >
              Dismiss
            </button>
          </div>
        )}
        <details>
          <summary>Evidence</summary>
          <pre>{JSON.stringify(rec.evidence, null, 2)}</pre>
        </details>
      </section>
      <Explanation state={explanation} />
      <Consensus id={rec.id} />
    </div>
  );
}

export function Recommendations() {
  useDocumentTitle("Recommendations");
  const { org } = useSession();
  const live = useLive();
  const [q, setQ] = useQueryState({ status: "open", category: "", id: "" });
  const list = useAsync(
    () => api.recommendations({ org_id: org.id, status: q.status === "any" ? null : q.status, category: q.category, limit: 200 }),
    [org.id, q.status, q.category],
  );
  useLiveReload(live.version.recommendations, list.reload);
  const selected = list.data?.find((r) => r.id === q.id) ?? (q.id ? undefined : list.data?.[0]);
  return (
    <div className="page" data-page="recommendations">
      <h2>Recommendations</h2>
      <div className="filters">
        <label>
          status
          <select name="status" value={q.status} onChange={(e) => setQ({ status: e.target.value, id: null })}>
            {["open", "under_review", "applied", "dismissed", "expired", "any"].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          category <input name="category" defaultValue={q.category} placeholder="any" onBlur={(e) => setQ({ category: e.target.value.trim(), id: null })} />
        </label>
      </div>
      <Async state={list} what="recommendations" isEmpty={(r) => r.length === 0} empty="No recommendations with this status.">
        {(rows) => (
          <>
            {selected ? <Detail key={selected.id} rec={selected} onChange={list.reload} /> : q.id && <Empty>That recommendation is not in this list.</Empty>}
            <Table
              testId="recommendations-table"
              csvName="recommendations.csv"
              rows={rows}
              rowKey={(r) => r.id}
              columns={[
                {
                  key: "title",
                  label: "Recommendation",
                  render: (r) => (
                    <button type="button" className={`link${r.id === selected?.id ? " selected" : ""}`} onClick={() => setQ({ id: r.id })}>
                      {r.title}
                    </button>
                  ),
                },
                { key: "category", label: "Category" },
                { key: "scope", label: "Scope", render: (r) => `${r.scope_type} ${r.scope_value ?? ""}`, csv: (r) => `${r.scope_type}:${r.scope_value ?? ""}` },
                { key: "estimated_monthly_savings", label: "Savings/month", numeric: true, render: (r) => money(r.estimated_monthly_savings) },
                { key: "confidence", label: "Confidence", numeric: true },
                { key: "status", label: "Status" },
              ]}
            />
          </>
        )}
      </Async>
    </div>
  );
}
