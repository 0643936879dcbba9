import { useDeferredValue, useEffect, useState, type ReactNode } from "react";
import { Link } from "react-router";
import { api, num, type Json } from "../api";
import { AskBox } from "../components/AskBox";
import { barsHeight, CHART_HEIGHT } from "../components/chartSizes";
import { count, money, pct, when } from "../components/format";
import { Async, Empty, ErrorBox } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useLive, useLiveReload } from "../live";
import { loadCharts, loadedCharts, type ChartsModule } from "../pageModules";
import { openRecommendations, overviewKeys, take } from "../prefetch";
import { useDocumentTitle, useSession } from "../session";

// Recharts is most of the page's code: the figures and tables render as soon as the data is here, the
// charts when their chunk (fetched beside this one) has loaded, each in a box of its final height until
// then. Not React.lazy: a Suspense boundary that showed its fallback is revealed up to 300 ms late
// (React throttles reveals), while a chunk that has already loaded is drawn in the same render.
function useCharts(): { charts: ChartsModule | null; error: Error | null } {
  const [charts, setCharts] = useState<ChartsModule | null>(loadedCharts);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => {
    if (charts) return;
    let live = true;
    loadCharts().then(
      (m) => live && setCharts(m),
      (exc: unknown) => live && setError(exc instanceof Error ? exc : new Error(String(exc))),
    );
    return () => {
      live = false;
    };
  }, [charts]);
  return { charts, error }; // a chunk that failed to load fails again until the page is reloaded
}

const NO_DAYS: Json[] = []; // one identity, so the memoised chart skips renders while there is no forecast

/** Where a chart will be, at its height, while its data or its code is on the way. */
function ChartPlaceholder({ height }: { height: number }) {
  return <div className="chart" style={{ height }} data-state="loading" aria-busy="true" />;
}

function Kpi({ label, value, sub, id }: { label: string; value: string; sub?: string; id: string }) {
  return (
    <div className="kpi" data-kpi={id}>
      <div className="kpi-label">{label}</div>
      <div className="kpi-value">{value}</div>
      {sub && <div className="kpi-sub">{sub}</div>}
    </div>
  );
}

function TopTable({ title, rows, label, name }: { title: string; rows: Json[]; label: string; name: string }) {
  return (
    <section className="card" data-section={name}>
      <h3>{title}</h3>
      {rows.length === 0 ? (
        <Empty>Nothing this month yet.</Empty>
      ) : (
        <Table
          csvName={`${name}.csv`}
          rows={rows}
          columns={[
            { key: label, label: title.replace("Top ", ""), render: (r) => r.name ?? r.prefix ?? r[label] ?? "(none)" },
            { key: "cost_usd", label: "Spend", numeric: true, render: (r) => money(r.cost_usd) },
            { key: "requests", label: "Requests", numeric: true, render: (r) => count(r.requests) },
          ]}
        />
      )}
    </section>
  );
}

export function Overview() {
  useDocumentTitle("Overview");
  const { org, can } = useSession();
  const live = useLive();
  const charts = useCharts();
  const overview = useAsync(() => take(overviewKeys.overview(org.id), () => api.overview(org.id)), [org.id]);
  const forecast = useAsync(
    () => (can("budgets.read") ? take(overviewKeys.forecast(org.id), () => api.forecast(org.id)) : Promise.resolve(null)),
    [org.id],
  );
  const alerts = useAsync(
    () =>
      can("alerts.read") ? take(overviewKeys.alerts(org.id), () => api.alertEvents(org.id, "open")) : Promise.resolve([]),
    [org.id],
  );
  const recs = useAsync(
    () =>
      can("recommendations.read")
        ? take(overviewKeys.recommendations(org.id), () => openRecommendations(org.id))
        : Promise.resolve([]),
    [org.id],
  );
  // The charts draw from a deferred copy of the answer: the render that shows the figures commits (and
  // paints) first, the charts follow in a render of their own instead of holding the figures back.
  const drawn = useDeferredValue(overview.data);
  const chart = (height: number, draw: (c: ChartsModule) => ReactNode) =>
    charts.error ? (
      <ErrorBox error={charts.error} />
    ) : charts.charts && drawn ? (
      draw(charts.charts)
    ) : (
      <ChartPlaceholder height={height} />
    );
  // Live: spend and counts follow the organization's usage, alerts and recommendations topics.
  useLiveReload(live.version.usage + live.version.alerts + live.version.recommendations, overview.reload);
  useLiveReload(live.version.alerts, alerts.reload);
  useLiveReload(live.version.recommendations, recs.reload);

  return (
    <div className="page" data-page="overview">
      <h2>Overview</h2>
      <AskBox org={org.id} />
      <Async state={overview} what="the overview">
        {(o) => {
          const f = forecast.data?.organization as Json | null | undefined;
          return (
            <>
              <div className="kpis">
                <Kpi
                  id="spend"
                  label={`Spend ${o.period.start} – ${o.period.end}`}
                  value={money(o.spend)}
                  sub={`${pct(o.spend_change_pct)} vs ${money(o.previous_spend)} same days last month`}
                />
                <Kpi id="requests" label="Requests" value={count(o.requests)} sub={`${count(o.errors)} errors`} />
                {can("budgets.read") && (
                  <Kpi
                    id="forecast"
                    label="Forecast to month end"
                    value={f ? money(f.forecast) : forecast.loading ? "…" : "–"}
                    sub={f ? `80%: ${money(f.lower_80)} – ${money(f.upper_80)}` : "no forecast yet"}
                  />
                )}
                <Kpi
                  id="recommendations"
                  label="Pending recommendations"
                  value={count(o.pending_recommendations)}
                  sub={`${money(o.potential_monthly_savings)}/month savings`}
                />
                <Kpi id="alerts" label="Open alerts" value={count(o.active_alerts)} />
              </div>
              <div className="grid2">
                <section className="card wide" data-section="spend-by-day">
                  <h3>Spend by day</h3>
                  {forecast.loading && !forecast.data ? (
                    // The forecast's band and line belong in the same chart: drawn once with both, not
                    // drawn and then redrawn whole when the forecast answers a moment after the spend.
                    <ChartPlaceholder height={CHART_HEIGHT} />
                  ) : (o.spend_by_day ?? []).every((d: Json) => num(d.cost_usd) === 0) && !f ? (
                    <Empty>No spend this month yet.</Empty>
                  ) : (
                    chart(CHART_HEIGHT, (c) => (
                      <c.SpendForecastChart days={o.spend_by_day ?? []} daily={f?.daily_forecast ?? NO_DAYS} />
                    ))
                  )}
                </section>
                <section className="card" data-section="spend-by-provider">
                  <h3>Spend by provider</h3>
                  {o.spend_by_provider.length === 0 ? (
                    <Empty>No spend this month yet.</Empty>
                  ) : (
                    chart(barsHeight(o.spend_by_provider.length), (c) => (
                      <c.CostBars name="providers" rows={o.spend_by_provider} label="provider" />
                    ))
                  )}
                </section>
              </div>
              <div className="grid4">
                <TopTable title="Top teams" rows={o.top_teams} label="team" name="top_teams" />
                <TopTable title="Top features" rows={o.top_features} label="feature" name="top_features" />
                <TopTable title="Top users" rows={o.top_users} label="end_user_id" name="top_users" />
                <TopTable title="Top keys" rows={o.top_api_keys} label="api_key_id" name="top_keys" />
              </div>
            </>
          );
        }}
      </Async>
      <div className="grid2">
        {can("alerts.read") && (
          <section className="card" data-section="open-alerts">
            <h3>
              Open alerts <Link to={`/alerts?org=${org.id}`}>all</Link>
            </h3>
            <Async state={alerts} what="open alerts" isEmpty={(a) => a.length === 0} empty="No open alerts.">
              {(rows) => (
                <Table
                  csvName="open_alerts.csv"
                  rows={rows.slice(0, 8)}
                  columns={[
                    { key: "severity", label: "Severity", render: (r) => <span className={`sev sev-${r.severity}`}>{r.severity}</span> },
                    { key: "title", label: "Alert" },
                    { key: "created_at", label: "Raised", render: (r) => when(r.created_at) },
                  ]}
                />
              )}
            </Async>
          </section>
        )}
        {can("recommendations.read") && (
          <section className="card" data-section="pending-recommendations">
            <h3>
              Pending recommendations <Link to={`/recommendations?org=${org.id}`}>all</Link>
            </h3>
            <Async state={recs} what="recommendations" isEmpty={(r) => r.length === 0} empty="No pending recommendations.">
              {(rows) => (
                <Table
                  csvName="pending_recommendations.csv"
                  rows={rows}
                  columns={[
                    { key: "title", label: "Recommendation" },
                    { key: "estimated_monthly_savings", label: "Savings/month", numeric: true, render: (r) => money(r.estimated_monthly_savings) },
                  ]}
                />
              )}
            </Async>
          </section>
        )}
      </div>
    </div>
  );
}
