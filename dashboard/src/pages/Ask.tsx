import { useState, type FormEvent } from "react";
import { api, type Json } from "../api";
import { money } from "../components/format";
import { Async, Empty } from "../components/State";
import { Table } from "../components/Table";
import { useAsync } from "../components/useAsync";
import { useDocumentTitle, useQueryState, useSession } from "../session";

const REASONS: Record<string, string> = {
  llm_off: "no model provider is configured",
  ai_cap_reached: "the organization's monthly AI budget is used up",
  llm_failed: "the model could not answer",
  ungrounded: "the model's answer cited figures the data does not hold",
};

function Answer({ answer }: { answer: Json }) {
  const sources = (answer.sources ?? []) as Json[];
  const actions = (answer.suggested_actions ?? []) as string[];
  return (
    <section className="card" data-section="answer" data-source={answer.source}>
      {answer.source === "template" && (
        <p className="state empty" data-testid="assistant-unavailable" role="status">
          The assistant's model is unavailable ({REASONS[answer.fallback_reason] ?? answer.fallback_reason ?? "unknown reason"}): this
          is a fixed summary of the same queries, not an answer to your exact question.
        </p>
      )}
      <div className="narrative" data-testid="assistant-answer">
        {String(answer.answer)
          .split(/\n{2,}/)
          .map((para, i) => (
            <p key={i}>{para}</p>
          ))}
      </div>
      {actions.length > 0 && (
        <>
          <h3>Suggested actions</h3>
          <ul data-testid="assistant-actions">
            {actions.map((a, i) => (
              <li key={i}>{a}</li>
            ))}
          </ul>
        </>
      )}
      <h3>Sources</h3>
      {sources.length === 0 ? (
        <Empty>No query was run for this answer.</Empty>
      ) : (
        <Table
          testId="assistant-sources"
          csvName="assistant-sources.csv"
          rows={sources}
          rowKey={(s) => s.id}
          columns={[
            { key: "id", label: "#" },
            { key: "query", label: "Query", render: (s) => <code>{s.query}</code> },
            { key: "parameters", label: "Parameters", render: (s) => <code>{JSON.stringify(s.parameters)}</code> },
            { key: "rows", label: "Rows", numeric: true },
          ]}
        />
      )}
      {answer.usage?.calls > 0 && (
        <p className="muted">
          {answer.usage.calls} model call(s), {money(answer.usage.cost_usd)} of AI spend.
        </p>
      )}
    </section>
  );
}

function Asked({ org, question }: { org: string; question: string }) {
  const answer = useAsync(() => api.ask(org, question), [org, question]);
  return (
    <Async state={answer} what="the answer">
      {(a) => <Answer answer={a} />}
    </Async>
  );
}

export function Ask() {
  useDocumentTitle("Ask");
  const { org } = useSession();
  // The question lives in the URL: an answer can be shared (and is asked again when opened).
  const [q, setQ] = useQueryState({ q: "" });
  const [draft, setDraft] = useState(q.q);
  function submit(e: FormEvent) {
    e.preventDefault();
    if (draft.trim()) setQ({ q: draft.trim() });
  }
  return (
    <div className="page" data-page="ask">
      <h2>Ask about your AI spend</h2>
      <form className="card form ask" onSubmit={submit} data-testid="ask-form">
        <label>
          Question
          <input
            name="query"
            maxLength={2000}
            value={draft}
            placeholder="Why did our costs increase last week?"
            onChange={(e) => setDraft(e.target.value)}
          />
        </label>
        <div className="actions">
          <button type="submit" disabled={!draft.trim()}>
            Ask
          </button>
        </div>
      </form>
      {q.q ? <Asked key={q.q} org={org.id} question={q.q} /> : <Empty>Ask a question: the answer comes from your own usage, with the queries it read.</Empty>}
    </div>
  );
}
