import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";

/** A question for the cost assistant from any page: it opens the Ask page with the question in its URL. */
export function AskBox({ org }: { org: string }) {
  const [draft, setDraft] = useState("");
  const navigate = useNavigate();
  function submit(e: FormEvent) {
    e.preventDefault();
    const q = draft.trim();
    if (q) navigate(`/ask?${new URLSearchParams({ org, q })}`);
  }
  return (
    <form className="ask-box" onSubmit={submit} data-testid="ask-box">
      <input
        name="ask"
        aria-label="Ask about your AI spend"
        maxLength={2000}
        value={draft}
        placeholder="Ask about your AI spend, e.g. why did our costs increase last week?"
        onChange={(e) => setDraft(e.target.value)}
      />
      <button type="submit" disabled={!draft.trim()}>
        Ask
      </button>
    </form>
  );
}
