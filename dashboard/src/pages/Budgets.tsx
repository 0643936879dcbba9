import { useState, type FormEvent } from "react";
import { api, num, type Json } from "../api";
import { day, money } from "../components/format";
import { Async } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useLive, useLiveReload } from "../live";
import { useDocumentTitle, useQueryState, useSession } from "../session";

const SCOPES = ["organization", "team", "project", "model", "feature", "user", "api_key"];

function Progress({ spent, projected, amount }: { spent: number; projected: number; amount: number }) {
  const w = (x: number) => `${Math.min(100, (x / Math.max(amount, 1e-9)) * 100)}%`;
  return (
    <div className="progress" title={`${money(spent)} spent, ${money(projected)} projected of ${money(amount)}`}>
      <div className="projected" style={{ width: w(projected) }} />
      <div className="spent" style={{ width: w(spent) }} />
    </div>
  );
}

function BudgetForm({ budget, org, onDone }: { budget: Json | null; org: string; onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const body: Json = {
      name: String(f.get("name")).trim(),
      amount: Number(f.get("amount")),
      period: f.get("period"),
      scope_type: f.get("scope_type"),
      scope_id: String(f.get("scope_id") || "").trim() || null,
      alert_thresholds: String(f.get("alert_thresholds"))
        .split(",")
        .map((s) => Number(s.trim()))
        .filter((n) => n > 0),
      hard_limit: f.get("hard_limit") === "on",
      enabled: f.get("enabled") === "on",
    };
    if (body.scope_type === "organization") body.scope_id = null;
    setBusy(true);
    setError(null);
    try {
      if (budget) await api.updateBudget(budget.id, body);
      else await api.createBudget({ ...body, org_id: org });
      onDone();
    } catch (exc) {
      setError((exc as Error).message);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="card form" onSubmit={submit} data-testid="budget-form">
      <h3>{budget ? `Edit ${budget.name}` : "New budget"}</h3>
      {error && (
        <p className="state error" role="alert">
          {error}
        </p>
      )}
      <label>
        Name <input name="name" required maxLength={200} defaultValue={budget?.name ?? ""} />
      </label>
      <label>
        Amount (USD) <input name="amount" type="number" min="0.01" step="0.01" required defaultValue={budget ? num(budget.amount) : ""} />
      </label>
      <label>
        Period
        <select name="period" defaultValue={budget?.period ?? "monthly"}>
          <option>daily</option>
          <option>weekly</option>
          <option>monthly</option>
        </select>
      </label>
      <label>
        Scope
        <select name="scope_type" defaultValue={budget?.scope_type ?? "organization"}>
          {SCOPES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <label>
        Scope value <input name="scope_id" placeholder="team, feature, model… name" defaultValue={budget?.scope_id ?? ""} />
      </label>
      <label>
        Alert at % <input name="alert_thresholds" defaultValue={(budget?.alert_thresholds ?? [50, 75, 90, 100]).join(", ")} />
      </label>
      <label className="check">
        <input name="hard_limit" type="checkbox" defaultChecked={budget?.hard_limit ?? false} /> hard limit (refuse calls over it)
      </label>
      <label className="check">
        <input name="enabled" type="checkbox" defaultChecked={budget?.enabled ?? true} /> enabled
      </label>
      <div className="actions">
        <button type="submit" disabled={busy}>
          {budget ? "Save" : "Create"}
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function Budgets() {
  useDocumentTitle("Budgets");
  const { org, can } = useSession();
  const live = useLive();
  const budgets = useAsync(() => api.budgets(org.id), [org.id]);
  useLiveReload(live.version.budgets + live.version.usage, budgets.reload);
  const [q, setQ] = useQueryState({ edit: "" });
  const editing = q.edit === "new" ? null : budgets.data?.find((b) => b.id === q.edit) ?? null;
  const done = () => {
    setQ({ edit: null });
    budgets.reload();
  };
  return (
    <div className="page" data-page="budgets">
      <h2>
        Budgets{" "}
        {can("budgets.write") && (
          <button type="button" onClick={() => setQ({ edit: "new" })}>
            New budget
          </button>
        )}
      </h2>
      {can("budgets.write") && q.edit && (q.edit === "new" || editing) && (
        <BudgetForm key={q.edit} budget={editing} org={org.id} onDone={done} />
      )}
      <Async state={budgets} what="budgets" isEmpty={(b) => b.length === 0} empty="No budgets yet.">
        {(rows) => (
          <Table
            testId="budgets-table"
            csvName="budgets.csv"
            rows={rows}
            rowKey={(r) => r.id}
            columns={[
              { key: "name", label: "Budget" },
              { key: "scope", label: "Scope", render: (r) => `${r.scope_type}${r.scope_id ? `: ${r.scope_id}` : ""}`, csv: (r) => `${r.scope_type}:${r.scope_id ?? ""}` },
              { key: "period", label: "Period", render: (r) => `${r.period} (${day(r.period_start)} – ${day(r.period_end)})` },
              { key: "status", label: "Status", render: (r) => <span className={`status status-${r.status}`}>{r.status}</span> },
              { key: "amount", label: "Amount", numeric: true, render: (r) => money(r.amount) },
              { key: "current_spend", label: "Spent", numeric: true, render: (r) => money(r.current_spend) },
              { key: "projected_spend", label: "Projected", numeric: true, render: (r) => money(r.projected_spend) },
              {
                key: "bar",
                label: "",
                render: (r) => <Progress spent={num(r.current_spend)} projected={num(r.projected_spend)} amount={num(r.amount)} />,
                csv: () => "",
              },
              ...(can("budgets.write")
                ? [
                    {
                      key: "actions",
                      label: "",
                      csv: () => "",
                      render: (r: Json) => (
                        <span className="actions">
                          <button type="button" className="secondary" onClick={() => setQ({ edit: r.id })}>
                            Edit
                          </button>
                          <button
                            type="button"
                            className="danger"
                            onClick={() => {
                              if (confirm(`Delete budget ${r.name}?`)) void api.deleteBudget(r.id).then(budgets.reload, (e) => alert(e.message));
                            }}
                          >
                            Delete
                          </button>
                        </span>
                      ),
                    },
                  ]
                : []),
            ]}
          />
        )}
      </Async>
    </div>
  );
}
