// The entry is small and free of React on purpose: it starts the config, the session and the first
// screen's requests at once, while React, the router and the page's chunks (start.tsx) download and
// compile in parallel, instead of after them.
import { restoreSession } from "./auth";
import { loadConfig } from "./config";
import { prefetchPage } from "./pageModules";
import { warmFirstScreen } from "./prefetch";
import "./styles.css";

const app = import("./start");
prefetchPage(window.location.hash);

const ready = loadConfig()
  .then(restoreSession)
  .then((session) => {
    if (session) warmFirstScreen(window.location.hash);
  });

void app.then((m) => m.start(ready));
