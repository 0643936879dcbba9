import { createRoot } from "react-dom/client";
import { App } from "./App";
import { restoreSession } from "./auth";
import { loadConfig } from "./config";
import { prefetchPage } from "./pageModules";
import { warmFirstScreen } from "./prefetch";
import "./styles.css";

prefetchPage(window.location.hash);

const root = createRoot(document.getElementById("root")!);
loadConfig()
  .then(restoreSession)
  .then((session) => {
    if (session) warmFirstScreen(window.location.hash);
  })
  .then(
    () => root.render(<App />),
    (exc) => root.render(<div className="state error">The dashboard is misconfigured: {String(exc.message ?? exc)}</div>),
  );
