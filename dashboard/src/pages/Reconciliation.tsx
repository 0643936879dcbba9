import { useState } from "react";
import { api, num, type Json } from "../api";
import { CauseBars, TrackedBilledChart } from "../components/charts";
import { day, money, when } from "../components/format";
import { Kpi } from "../components/Kpi";
import { Async, Empty } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useDocumentTitle, useQueryState, useSession } from "../session";

/** The causes a re-price from the bill fixes (the cause list marks them `ours`). */
function oursOf(meta: Json | null): Set<string> {
  return new Set(((meta?.causes ?? []) as Json[]).filter((c) => c.ours).map((c) => String(c.cause)));
}

function causeText(causes: Json | undefined): string {
  return Object.entries(causes ?? {})
    .filter(([, v]) => num(v) !== 0)
    .map(([k, v]) => `${k} ${money(v)}`)
    .join(", ");
}

function Reprice({ row, org, span, onDone }: { row: Json; org: string; span: [string, string]; onDone: (msg: string) => void }) {
  const [busy, setBusy] = useState(false);
  async function go() {
    if (!confirm(`Set your organization's price for ${row.canonical_model} (${row.provider}) from what the provider billed?`)) return;
    setBusy(true);
    try {
      const price = await api.reprice({
        org_id: org,
        provider: row.provider,
        canonical_model: row.canonical_model,
        start_date: span[0],
        end_date: span[1],
      });
      const from = price?.effective_from ? ` from ${day(price.effective_from)}` : "";
      onDone(
        `Re-priced ${row.canonical_model} from the bill${from}: $${num(price?.input_mtok)} input and $${num(price?.output_mtok)} ` +
          `output per million tokens, ${num(price?.repriced)} stored call(s) re-priced, reconciled again.`,
      );
    } catch (exc) {
      onDone(`Could not re-price ${row.canonical_model}: ${(exc as Error).message}`);
    } finally {
      setBusy(false);
    }
  }
  return (
    <button type="button" className="secondary" data-action="reprice" disabled={busy} onClick={() => void go()}>
      Re-price from bill
    </button>
  );
}

export function Reconciliation() {
  useDocumentTitle("Reconciliation");
  const { org, can } = useSession();
  const [q, setQ] = useQueryState({ start: "", end: "", provider: "", model: "" });
  const [notice, setNotice] = useState<string | null>(null);
  const report = useAsync(
    () =>
      api.reconciliation({
        org_id: org.id,
        start_date: q.start,
        end_date: q.end,
        provider: q.provider,
        canonical_model: q.model,
      }),
    [org.id, q.start, q.end, q.provider, q.model],
  );
  return (
    <div className="page" data-page="reconciliation">
      <h2>Reconciliation</h2>
      <div className="filters">
        <label>
          from <input type="date" name="start" value={q.start} onChange={(e) => setQ({ start: e.target.value })} />
        </label>
        <label>
          to <input type="date" name="end" value={q.end} onChange={(e) => setQ({ end: e.target.value })} />
        </label>
        <label>
          provider
          <select name="provider" value={q.provider} onChange={(e) => setQ({ provider: e.target.value })}>
            {["", "openai", "anthropic"].map((v) => (
              <option key={v} value={v}>
                {v || "any"}
              </option>
            ))}
          </select>
        </label>
        <label>
          model <input name="model" value={q.model} placeholder="any" onChange={(e) => setQ({ model: e.target.value })} />
        </label>
      </div>
      {notice && (
        <p className="state" data-testid="reprice-notice" role="status">
          {notice}
        </p>
      )}
      <Async
        state={report}
        what="reconciliation"
        isEmpty={(r) => r.data.length === 0}
        empty="Nothing reconciled in this range yet: the reconciliation job compares what we tracked with the bills of providers connected with an admin key."
      >
        {({ data: rows, meta }) => {
          const totals = meta?.totals ?? {};
          const ours = oursOf(meta);
          const span: [string, string] = [String(meta?.start_date ?? ""), String(meta?.end_date ?? "")];
          const causes = ((meta?.causes ?? []) as Json[]).map((c) => ({
            cause: String(c.cause),
            ours: Boolean(c.ours),
            definition: String(c.definition ?? ""),
            amount: num(totals.causes?.[c.cause]),
          }));
          const repricable = (r: Json) =>
            r.provider && r.canonical_model && Object.entries(r.causes ?? {}).some(([k, v]) => ours.has(k) && num(v) !== 0);
          return (
            <>
              <div className="kpis">
                <Kpi id="tracked" label="Tracked" value={money(totals.tracked_cost)} sub={`${day(span[0])} – ${day(span[1])}`} />
                <Kpi id="billed" label="Billed" value={money(totals.billed_cost)} />
                <Kpi id="gap" label="Gap (billed − tracked)" value={money(totals.gap)} />
                <Kpi id="unexplained" label="Unexplained" value={money(totals.unexplained)} sub={`reconciled ${when(meta?.reconciled_at)}`} />
              </div>
              <section className="card" data-section="tracked-billed">
                <h3>Tracked vs billed per day</h3>
                <TrackedBilledChart series={meta?.series ?? []} />
              </section>
              <div className="grid2">
                <section className="card" data-section="causes">
                  <h3>Gap by cause</h3>
                  <Table
                    testId="causes-table"
                    csvName="reconciliation-causes.csv"
                    rows={causes}
                    rowKey={(c) => c.cause}
                    columns={[
                      { key: "cause", label: "Cause" },
                      { key: "amount", label: "Amount", numeric: true, render: (c) => money(c.amount) },
                      { key: "ours", label: "Ours", render: (c) => (c.ours ? "yes: a re-price fixes it" : "no") },
                      { key: "definition", label: "What it means" },
                    ]}
                  />
                </section>
                <section className="card" data-section="cause-bars">
                  <h3>Causes found</h3>
                  <CauseBars rows={causes.filter((c) => c.amount !== 0)} />
                </section>
              </div>
              <section className="card" data-section="rows">
                <h3>By day, provider and model</h3>
                {rows.length === 0 ? (
                  <Empty>No rows.</Empty>
                ) : (
                  <Table
                    testId="reconciliation-table"
                    csvName="reconciliation.csv"
                    rows={rows}
                    columns={[
                      { key: "date", label: "Day", render: (r) => day(r.date) },
                      { key: "provider", label: "Provider" },
                      { key: "canonical_model", label: "Model", render: (r) => r.canonical_model ?? "(none)" },
                      { key: "tracked_cost", label: "Tracked", numeric: true, render: (r) => money(r.tracked_cost) },
                      { key: "billed_cost", label: "Billed", numeric: true, render: (r) => money(r.billed_cost) },
                      { key: "gap", label: "Gap", numeric: true, render: (r) => money(r.gap) },
                      { key: "causes", label: "Causes", render: (r) => causeText(r.causes) || "–" },
                      ...(can("prices.write")
                        ? [
                            {
                              key: "actions",
                              label: "",
                              csv: () => "",
                              render: (r: Json) =>
                                repricable(r) ? (
                                  <Reprice
                                    row={r}
                                    org={org.id}
                                    span={span}
                                    onDone={(msg) => {
                                      setNotice(msg);
                                      report.reload();
                                    }}
                                  />
                                ) : null,
                            },
                          ]
                        : []),
                    ]}
                  />
                )}
              </section>
            </>
          );
        }}
      </Async>
    </div>
  );
}
