import { createRoot } from "react-dom/client";
import { App } from "./App";

/** Render the app once the config and the session are known (or say why the config is unusable). */
export function start(ready: Promise<void>): void {
  const root = createRoot(document.getElementById("root")!);
  ready.then(
    () => root.render(<App />),
    (exc) => root.render(<div className="state error">The dashboard is misconfigured: {String(exc.message ?? exc)}</div>),
  );
}
