import { useState, type FormEvent } from "react";
import { api, type Json } from "../api";
import { money, when } from "../components/format";
import { Async } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useDocumentTitle, useSession } from "../session";

const ROLES = ["owner", "admin", "member", "viewer", "billing"];

function Secret({ title, value, note }: { title: string; value: string; note: string }) {
  return (
    <div className="secret" data-testid="secret">
      <strong>{title}</strong>
      <pre>{value}</pre>
      <p className="muted">{note}</p>
    </div>
  );
}

function Members() {
  const { org, can, me } = useSession();
  const members = useAsync(() => api.members(org.id), [org.id]);
  const change = (userId: string, role: string) =>
    void api.setMemberRole(org.id, userId, role).then(members.reload, (e) => alert(e.message));
  return (
    <section className="card" data-section="members">
      <h3>Members and roles</h3>
      <Async state={members} what="members" isEmpty={(m) => m.length === 0}>
        {(rows) => (
          <Table
            csvName="members.csv"
            rows={rows}
            rowKey={(r) => r.user_id}
            columns={[
              { key: "email", label: "Member", render: (r) => r.email ?? r.user_id },
              {
                key: "role",
                label: "Role",
                render: (r) =>
                  can("members.write") && r.user_id !== me.user_id ? (
                    <select aria-label={`role of ${r.email}`} value={r.role} onChange={(e) => change(r.user_id, e.target.value)}>
                      {ROLES.map((x) => (
                        <option key={x}>{x}</option>
                      ))}
                    </select>
                  ) : (
                    r.role
                  ),
              },
              { key: "created_at", label: "Since", render: (r) => when(r.created_at) },
              ...(can("members.write")
                ? [
                    {
                      key: "actions",
                      label: "",
                      csv: () => "",
                      render: (r: Json) =>
                        r.user_id !== me.user_id && (
                          <button
                            type="button"
                            className="danger"
                            onClick={() => {
                              if (confirm(`Remove ${r.email ?? r.user_id} from ${org.name}?`))
                                void api.removeMember(org.id, r.user_id).then(members.reload, (e) => alert(e.message));
                            }}
                          >
                            Remove
                          </button>
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

function KeyTable({ rows, reload, name }: { rows: Json[]; reload: () => void; name: string }) {
  const { can } = useSession();
  return (
    <Table
      csvName={`${name}.csv`}
      rows={rows}
      rowKey={(r) => r.id}
      columns={[
        { key: "name", label: "Name" },
        { key: "prefix", label: "Key", render: (r) => <code>{r.prefix}…</code> },
        { key: "mode", label: "Mode" },
        { key: "scopes", label: "Scopes", render: (r) => (r.scopes ?? []).join(", ") },
        { key: "last_used_at", label: "Last used", render: (r) => when(r.last_used_at) },
        { key: "state", label: "State", render: (r) => (r.revoked_at ? `revoked ${when(r.revoked_at)}` : r.expires_at ? `expires ${when(r.expires_at)}` : "active") },
        ...(can("api_keys.write")
          ? [
              {
                key: "actions",
                label: "",
                csv: () => "",
                render: (r: Json) =>
                  !r.revoked_at && (
                    <button
                      type="button"
                      className="danger"
                      onClick={() => {
                        if (confirm(`Revoke ${r.name ?? r.prefix}? Calls with it fail at once.`)) void api.revokeApiKey(r.id).then(reload, (e) => alert(e.message));
                      }}
                    >
                      Revoke
                    </button>
                  ),
              },
            ]
          : []),
      ]}
    />
  );
}

function ApiKeys() {
  const { org, can } = useSession();
  const keys = useAsync(() => api.apiKeys(org.id), [org.id]);
  const [created, setCreated] = useState<Json | null>(null);
  const [error, setError] = useState<string | null>(null);
  async function create(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setError(null);
    try {
      setCreated(await api.createApiKey({ org_id: org.id, name: String(f.get("name")).trim(), mode: f.get("mode") }));
      keys.reload();
      e.currentTarget?.reset();
    } catch (exc) {
      setError((exc as Error).message);
    }
  }
  // Gateway keys are API keys too; they are listed with their policy below.
  const isVirtual = (k: Json) => (k.scopes ?? []).includes("gateway");
  return (
    <>
      <section className="card" data-section="api-keys">
        <h3>API keys</h3>
        {can("api_keys.write") && (
          <form className="inline" onSubmit={create}>
            <input name="name" placeholder="key name" required maxLength={200} />
            <select name="mode" aria-label="mode">
              <option value="live">live</option>
              <option value="test">test</option>
            </select>
            <button type="submit">Create key</button>
          </form>
        )}
        {error && (
          <p className="state error" role="alert">
            {error}
          </p>
        )}
        {created && <Secret title={`Key ${created.name ?? ""}`} value={created.key} note="Shown once: TokenTRA stores only its hash." />}
        <Async state={keys} what="API keys" isEmpty={(k) => k.filter((x) => !isVirtual(x)).length === 0}>
          {(rows) => <KeyTable name="api_keys" rows={rows.filter((k) => !isVirtual(k))} reload={keys.reload} />}
        </Async>
      </section>
      <VirtualKeys />
    </>
  );
}

function VirtualKeys() {
  const { org, can } = useSession();
  const keys = useAsync(() => api.virtualKeys(org.id), [org.id]);
  return (
    <section className="card" data-section="virtual-keys">
      <h3>Gateway virtual keys</h3>
      <Async state={keys} what="virtual keys" isEmpty={(k) => k.length === 0} empty="No virtual keys (tokentra virtual-keys create, or POST /virtual-keys).">
        {(rows) => (
          <Table
            csvName="virtual_keys.csv"
            rows={rows}
            rowKey={(r) => r.id}
            columns={[
              { key: "name", label: "Name" },
              { key: "prefix", label: "Key", render: (r) => <code>{r.prefix}…</code> },
              { key: "attribution", label: "Attributed to", render: (r) => [r.team, r.project, r.end_user_id].filter(Boolean).join(" / ") || "–" },
              {
                key: "budget_amount",
                label: "Budget",
                render: (r) => (r.budget_amount != null ? `${money(r.budget_amount)} ${r.budget_period}${r.hard_limit ? " (hard)" : ""}` : "–"),
              },
              { key: "limits", label: "Limits", render: (r) => [r.rpm && `${r.rpm} rpm`, r.tpm && `${r.tpm} tpm`].filter(Boolean).join(", ") || "–" },
              { key: "allowed_models", label: "Models", render: (r) => (r.allowed_models ?? []).join(", ") || "any" },
              {
                key: "state",
                label: "State",
                render: (r) =>
                  r.revoked_at ? `revoked ${when(r.revoked_at)}` : r.blocked_until ? `blocked until ${when(r.blocked_until)} (${r.block_reason})` : "active",
              },
              { key: "last_used_at", label: "Last used", render: (r) => when(r.last_used_at) },
              ...(can("api_keys.write")
                ? [
                    {
                      key: "actions",
                      label: "",
                      csv: () => "",
                      render: (r: Json) =>
                        !r.revoked_at && (
                          <button
                            type="button"
                            className="danger"
                            onClick={() => {
                              if (confirm(`Revoke ${r.name}?`)) void api.revokeVirtualKey(org.id, r.id).then(keys.reload, (e) => alert(e.message));
                            }}
                          >
                            Revoke
                          </button>
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

function Analysts() {
  const { org, can } = useSession();
  const analysts = useAsync(() => api.analysts(org.id), [org.id]);
  const [created, setCreated] = useState<Json | null>(null);
  const [error, setError] = useState<string | null>(null);
  const create = async () => {
    setError(null);
    try {
      setCreated(await api.createAnalyst({ org_id: org.id }));
      analysts.reload();
    } catch (exc) {
      setError((exc as Error).message);
    }
  };
  return (
    <section className="card" data-section="analysts">
      <h3>
        Analysts (read-only SQL){" "}
        {can("members.write") && (
          <button type="button" onClick={() => void create()}>
            New analyst login
          </button>
        )}
      </h3>
      {error && (
        <p className="state error" role="alert">
          {error}
        </p>
      )}
      {created && <Secret title={`Analyst ${created.role}`} value={created.connection_string} note="Shown once: the password is stored nowhere you can read it back." />}
      <Async state={analysts} what="analysts" isEmpty={(a) => a.length === 0} empty="No analyst logins.">
        {(rows) => (
          <Table
            csvName="analysts.csv"
            rows={rows}
            rowKey={(r) => r.role}
            columns={[
              { key: "role", label: "Login", render: (r) => <code>{r.role}</code> },
              { key: "statement_timeout", label: "Timeout" },
              { key: "created_at", label: "Created", render: (r) => when(r.created_at) },
              ...(can("members.write")
                ? [
                    {
                      key: "actions",
                      label: "",
                      csv: () => "",
                      render: (r: Json) => (
                        <button
                          type="button"
                          className="danger"
                          onClick={() => {
                            if (confirm(`Drop ${r.role}? Its sessions end at once.`)) void api.dropAnalyst(r.role).then(analysts.reload, (e) => alert(e.message));
                          }}
                        >
                          Drop
                        </button>
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

export function Admin() {
  useDocumentTitle("Admin");
  const { can } = useSession();
  return (
    <div className="page" data-page="admin">
      <h2>Admin</h2>
      {can("members.read") && <Members />}
      {can("api_keys.read") && <ApiKeys />}
      {can("members.read") && <Analysts />}
    </div>
  );
}
