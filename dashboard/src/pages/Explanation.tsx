import type { Json } from "../api";
import { money } from "../components/format";
import { Async } from "../components/State";
import type { AsyncState } from "../components/useAsync";

/** A grounded explanation: prose whose every figure is in the evidence, and where it came from. */
export function Explanation({ state }: { state: AsyncState<Json | null> }) {
  return (
    <section className="card explanation" data-section="explanation">
      <h3>Explanation</h3>
      <Async state={state} what="the explanation" isEmpty={(x) => x === null} empty="Not explained yet: the explanations job writes one within ten minutes.">
        {(x) => x && (
          <>
            <p className="headline">{x.headline}</p>
            <p>{x.body}</p>
            <p className="muted">
              {x.source === "llm"
                ? `Written by ${x.provider}:${x.model} (${x.llm_calls} call(s), ${money(x.cost_usd)}), every figure checked against the evidence.`
                : `Template built from the evidence${x.fallback_reason ? ` (${x.fallback_reason.replace(/_/g, " ")})` : ""}.`}
            </p>
            <details>
              <summary>Evidence</summary>
              <pre>{JSON.stringify(x.evidence, null, 2)}</pre>
            </details>
          </>
        )}
      </Async>
    </section>
  );
}
