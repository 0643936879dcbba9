import { api, num, type Json } from "../api";
import { count, day, money, pct, when } from "../components/format";
import { Kpi } from "../components/Kpi";
import { Async, Empty } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useDocumentTitle, useQueryState, useSession } from "../session";

const PAGE_SIZE = 20;

function ReportView({ id }: { id: string }) {
  const report = useAsync(() => api.report(id), [id]);
  return (
    <Async state={report} what="the report" isEmpty={(r) => r === null} empty="This report does not exist, or you may not read it.">
      {(r) => {
        const ev: Json = r!.evidence ?? {};
        const spend: Json = ev.spend ?? {};
        const anomalies: Json = ev.anomalies ?? {};
        const recs: Json = ev.recommendations ?? {};
        return (
          <section className="card" data-section="report" data-report={r!.id}>
            <h3 data-testid="report-headline">{r!.headline}</h3>
            <p className="muted">
              Week {day(r!.period_start)} – {day(r!.period_end)} ·{" "}
              {r!.method === "llm" ? `written by ${r!.model ?? "the model"}` : `from the template${r!.fallback_reason ? ` (${r!.fallback_reason})` : ""}`} ·{" "}
              {r!.grounded ? "every figure checked against the evidence" : "not grounded"} · cost {money(r!.cost_usd)}
            </p>
            <div className="kpis">
              <Kpi id="week-spend" label="Spend this week" value={money(spend.this_week_usd)} sub={`previous week ${money(spend.previous_week_usd)}`} />
              <Kpi id="week-change" label="Change" value={money(spend.change_usd)} sub={spend.change_pct != null ? pct(spend.change_pct) : "–"} />
              <Kpi id="week-requests" label="Requests" value={count(spend.requests)} sub={`previous week ${count(spend.previous_requests)}`} />
              <Kpi id="week-anomalies" label="Anomalies" value={count(anomalies.count)} sub={`${count(anomalies.high_or_critical)} high or critical`} />
              <Kpi
                id="week-savings"
                label="Realised savings / month"
                value={money(recs.realised_monthly_savings_usd)}
                sub={`${count(recs.open)} open, ${money(recs.open_estimated_monthly_savings_usd)} / month estimated`}
              />
            </div>
            <div className="narrative" data-testid="report-narrative">
              {String(r!.narrative)
                .split(/\n{2,}/)
                .map((para, i) => (
                  <p key={i}>{para}</p>
                ))}
            </div>
            {(ev.top_drivers?.model ?? []).length > 0 && (
              <Table
                testId="report-drivers"
                csvName="report-drivers.csv"
                rows={ev.top_drivers.model as Json[]}
                columns={[
                  { key: "value", label: "Model" },
                  { key: "this_week_usd", label: "This week", numeric: true, render: (d) => money(d.this_week_usd) },
                  { key: "previous_week_usd", label: "Previous week", numeric: true, render: (d) => money(d.previous_week_usd) },
                  { key: "change_usd", label: "Change", numeric: true, render: (d) => money(d.change_usd) },
                ]}
              />
            )}
          </section>
        );
      }}
    </Async>
  );
}

export function Reports() {
  useDocumentTitle("Reports");
  const { org } = useSession();
  const [q, setQ] = useQueryState({ id: "", offset: "0" });
  const offset = Math.max(0, Number(q.offset) || 0);
  const list = useAsync(() => api.reports({ org_id: org.id, limit: PAGE_SIZE, offset }), [org.id, offset]);
  const selected = q.id || list.data?.data[0]?.id;
  return (
    <div className="page" data-page="reports">
      <h2>Weekly reports</h2>
      <Async
        state={list}
        what="reports"
        isEmpty={(r) => r.data.length === 0 && offset === 0}
        empty="No weekly report yet: the weekly reports job writes one each Monday for the week before."
      >
        {({ data: rows, meta }) => {
          const total = num(meta?.total);
          return (
            <>
              {selected && <ReportView id={String(selected)} />}
              <Table
                testId="reports-table"
                csvName="reports.csv"
                rows={rows}
                rowKey={(r) => r.id}
                columns={[
                  {
                    key: "period_start",
                    label: "Week",
                    render: (r) => (
                      <button type="button" className={`link${r.id === selected ? " selected" : ""}`} onClick={() => setQ({ id: r.id })}>
                        {day(r.period_start)} – {day(r.period_end)}
                      </button>
                    ),
                  },
                  { key: "headline", label: "Headline" },
                  { key: "method", label: "Written by", render: (r) => (r.method === "llm" ? r.model ?? "model" : "template") },
                  { key: "grounded", label: "Grounded", render: (r) => (r.grounded ? "yes" : "no") },
                  { key: "cost_usd", label: "Cost", numeric: true, render: (r) => money(r.cost_usd) },
                  { key: "created_at", label: "Written", render: (r) => when(r.created_at) },
                ]}
              />
              {total > PAGE_SIZE && (
                <div className="actions" data-testid="reports-pages">
                  <button type="button" className="secondary" disabled={offset === 0} onClick={() => setQ({ offset: String(Math.max(0, offset - PAGE_SIZE)), id: null })}>
                    Newer
                  </button>
                  <span className="muted">
                    {offset + 1}–{Math.min(offset + rows.length, total)} of {total}
                  </span>
                  <button
                    type="button"
                    className="secondary"
                    disabled={offset + PAGE_SIZE >= total}
                    onClick={() => setQ({ offset: String(offset + PAGE_SIZE), id: null })}
                  >
                    Older
                  </button>
                </div>
              )}
              {rows.length === 0 && <Empty>No reports on this page.</Empty>}
            </>
          );
        }}
      </Async>
    </div>
  );
}
