import { Fragment, useState, type FormEvent } from "react";
import { api, type Json } from "../api";
import { when } from "../components/format";
import { Async } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useLive, useLiveReload } from "../live";
import { useDocumentTitle, useQueryState, useSession } from "../session";

const TYPES = ["budget_threshold", "spend_spike", "error_rate", "latency", "anomaly", "forecast_overrun"];

function Deliveries({ rows }: { rows: Json[] }) {
  if (rows.length === 0) return <em>no deliveries</em>;
  return (
    <ul className="deliveries">
      {rows.map((d) => (
        <li key={d.id} data-delivery={d.status}>
          {d.channel_type} {d.kind}: <strong>{d.status}</strong> after {d.attempts}/{d.max_attempts} attempts
          {d.last_status_code ? ` (HTTP ${d.last_status_code})` : ""}
          {d.last_error ? ` – ${d.last_error}` : ""}
          {d.delivered_at ? ` at ${when(d.delivered_at)}` : ""}
        </li>
      ))}
    </ul>
  );
}

function Events() {
  const { org, can } = useSession();
  const live = useLive();
  const [q, setQ] = useQueryState({ status: "" });
  const events = useAsync(() => api.alertEvents(org.id, q.status || undefined), [org.id, q.status]);
  useLiveReload(live.version.alerts, events.reload);
  const [open, setOpen] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const act = async (id: string, what: "acknowledge" | "resolve") => {
    setBusy(id);
    try {
      await (what === "acknowledge" ? api.acknowledge(id) : api.resolve(id));
      events.reload();
    } catch (exc) {
      alert((exc as Error).message);
    } finally {
      setBusy(null);
    }
  };
  return (
    <section className="card" data-section="events">
      <h3>
        Events{" "}
        <select aria-label="status" name="status" value={q.status} onChange={(e) => setQ({ status: e.target.value })}>
          <option value="">all</option>
          <option value="open">open</option>
          <option value="acknowledged">acknowledged</option>
          <option value="resolved">resolved</option>
        </select>
      </h3>
      <Async state={events} what="alert events" isEmpty={(e) => e.length === 0} empty="No alert events.">
        {(rows) => (
          <Table
            testId="events-table"
            csvName="alert_events.csv"
            rows={rows}
            rowKey={(r) => r.id}
            columns={[
              { key: "severity", label: "Severity", render: (r) => <span className={`sev sev-${r.severity}`}>{r.severity}</span> },
              {
                key: "title",
                label: "Alert",
                render: (r) => (
                  <Fragment>
                    <button type="button" className="link" onClick={() => setOpen(open === r.id ? null : r.id)}>
                      {r.title}
                    </button>
                    {open === r.id && <Deliveries rows={r.deliveries ?? []} />}
                  </Fragment>
                ),
              },
              { key: "status", label: "Status", render: (r) => <span className={`status status-${r.status}`} data-event-status={r.status}>{r.status}</span> },
              { key: "deliveries", label: "Deliveries", csv: (r) => (r.deliveries ?? []).map((d: Json) => `${d.channel_type}:${d.status}`).join(" "), render: (r) => (r.deliveries ?? []).map((d: Json) => `${d.channel_type} ${d.status}`).join(", ") || "–" },
              { key: "created_at", label: "Raised", render: (r) => when(r.created_at) },
              ...(can("alerts.write")
                ? [
                    {
                      key: "actions",
                      label: "",
                      csv: () => "",
                      render: (r: Json) => (
                        <span className="actions">
                          {r.status === "open" && (
                            <button type="button" disabled={busy === r.id} onClick={() => void act(r.id, "acknowledge")} data-action="acknowledge">
                              Acknowledge
                            </button>
                          )}
                          {r.status !== "resolved" && (
                            <button type="button" className="secondary" disabled={busy === r.id} onClick={() => void act(r.id, "resolve")} data-action="resolve">
                              Resolve
                            </button>
                          )}
                        </span>
                      ),
                    },
                  ]
                : []),
            ]}
          />
        )}
      </Async>
    </section>
  );
}

function RuleForm({ org, onDone }: { org: string; onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    let condition: Json = {};
    try {
      condition = JSON.parse(String(f.get("condition") || "{}"));
    } catch {
      setError("condition: not valid JSON");
      return;
    }
    const url = String(f.get("url") || "").trim();
    const channel: Json | null = url ? { type: f.get("channel_type"), url } : null;
    try {
      await api.createRule({ org_id: org, name: f.get("name"), type: f.get("type"), condition, channels: channel ? [channel] : [] });
      onDone();
    } catch (exc) {
      setError((exc as Error).message);
    }
  }
  return (
    <form className="card form" onSubmit={submit}>
      <h3>New alert rule</h3>
      {error && (
        <p className="state error" role="alert">
          {error}
        </p>
      )}
      <label>
        Name <input name="name" required />
      </label>
      <label>
        Type
        <select name="type">
          {TYPES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
      </label>
      <label>
        Condition (JSON) <textarea name="condition" defaultValue="{}" rows={3} />
      </label>
      <label>
        Channel
        <select name="channel_type">
          <option>webhook</option>
          <option>slack</option>
          <option>email</option>
          <option>pagerduty</option>
        </select>
      </label>
      <label>
        URL or address <input name="url" placeholder="https://hooks.slack.com/…" />
      </label>
      <div className="actions">
        <button type="submit">Create</button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Rules() {
  const { org, can } = useSession();
  const rules = useAsync(() => api.alertRules(org.id), [org.id]);
  const [creating, setCreating] = useState(false);
  const toggle = (r: Json) => void api.updateRule(r.id, { enabled: !r.enabled }).then(rules.reload, (e) => alert(e.message));
  return (
    <section className="card" data-section="rules">
      <h3>
        Rules and channels{" "}
        {can("alerts.write") && !creating && (
          <button type="button" onClick={() => setCreating(true)}>
            New rule
          </button>
        )}
      </h3>
      {creating && (
        <RuleForm
          org={org.id}
          onDone={() => {
            setCreating(false);
            rules.reload();
          }}
        />
      )}
      <Async state={rules} what="alert rules" isEmpty={(r) => r.length === 0} empty="No alert rules.">
        {(rows) => (
          <Table
            csvName="alert_rules.csv"
            rows={rows}
            rowKey={(r) => r.id}
            columns={[
              { key: "name", label: "Rule" },
              { key: "type", label: "Type" },
              { key: "condition", label: "Condition", render: (r) => <code>{JSON.stringify(r.condition)}</code> },
              {
                key: "channels",
                label: "Channels",
                render: (r) =>
                  (r.channels ?? []).map((c: Json) => `${c.type}${c.url_hint ? ` ${c.url_hint}` : c.to ? ` ${c.to}` : ""}`).join(", ") || "–",
              },
              {
                key: "enabled",
                label: "Enabled",
                render: (r) =>
                  can("alerts.write") ? (
                    <input type="checkbox" checked={r.enabled} onChange={() => toggle(r)} aria-label={`enable ${r.name}`} />
                  ) : r.enabled ? (
                    "yes"
                  ) : (
                    "no"
                  ),
              },
            ]}
          />
        )}
      </Async>
    </section>
  );
}

export function Alerts() {
  useDocumentTitle("Alerts");
  return (
    <div className="page" data-page="alerts">
      <h2>Alerts</h2>
      <Events />
      <Rules />
    </div>
  );
}
