import { Link } from "react-router";
import { api, num, type Json } from "../api";
import { AskBox } from "../components/AskBox";
import { CHART_HEIGHT } from "../components/chartSizes";
import { CostBars, SpendForecastChart } from "../components/overviewCharts";
import { count, money, pct, when } from "../components/format";
import { Async, Empty } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useLive, useLiveReload } from "../live";
import { openRecommendations, overviewKeys, take } from "../prefetch";
import { useDocumentTitle, useSession } from "../session";

const NO_DAYS: Json[] = []; // one identity, so the memoised chart skips renders while there is no forecast

/** Where the spend chart will be, at its height, while the forecast is on the way. */
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
                    <SpendForecastChart days={o.spend_by_day ?? []} daily={f?.daily_forecast ?? NO_DAYS} />
                  )}
                </section>
                <section className="card" data-section="spend-by-provider">
                  <h3>Spend by provider</h3>
                  {o.spend_by_provider.length === 0 ? (
                    <Empty>No spend this month yet.</Empty>
                  ) : (
                    <CostBars name="providers" rows={o.spend_by_provider} label="provider" />
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
