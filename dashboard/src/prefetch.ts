// The first screen's requests, started as soon as the session is known instead of one after another
// (config, then /me, then the page's data once React has rendered the page): main.tsx warms them while
// the page's chunk loads, and the first component asking for the same key takes the request in flight.
// Only the first use is served from here; a reload or any later call asks the server again.
import { api } from "./api";

const inFlight = new Map<string, Promise<unknown>>();

/** The in-flight request for key if one was started early, else a fresh one from fetch(). */
export function take<T>(key: string, fetch: () => Promise<T>): Promise<T> {
  const early = inFlight.get(key) as Promise<T> | undefined;
  inFlight.delete(key);
  return early ?? fetch();
}

function warm<T>(key: string, fetch: () => Promise<T>): void {
  const p = fetch();
  p.catch(() => undefined); // whoever takes it sees the error; unhandled until then is no error
  inFlight.set(key, p);
}

/** Start /me and, when the URL names an organization on the overview, the overview's own answer. */
export function warmFirstScreen(hash: string): void {
  warm("me", api.me);
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?");
  const org = new URLSearchParams(search).get("org");
  if ((path === "" || path === "overview") && org) {
    warm(`overview:${org}`, () => api.overview(org));
  }
}
