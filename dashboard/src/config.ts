// Which backend the dashboard talks to is configuration, never code: a runtime file served beside the
// app (config.json, which `tokentra serve` writes from its settings), else build-time env, else the
// local stack on the page's own origin.

export type Mode = "local" | "supabase";

export interface Config {
  mode: Mode;
  /** Base URL of the query functions, e.g. http://127.0.0.1:54321/functions/v1 */
  functionsUrl: string;
  /** Supabase project URL and anon key (supabase mode: auth and Realtime). */
  supabaseUrl?: string;
  supabaseAnonKey?: string;
  /** How often the local SSE transport's server polls, shown only for diagnostics. */
  realtime: "sse" | "supabase";
}

function fromEnv(): Partial<Config> {
  const env = import.meta.env;
  const out: Partial<Config> = {};
  if (env.VITE_SUPABASE_URL) {
    out.mode = "supabase";
    out.supabaseUrl = env.VITE_SUPABASE_URL;
    out.supabaseAnonKey = env.VITE_SUPABASE_ANON_KEY;
  }
  if (env.VITE_FUNCTIONS_URL) out.functionsUrl = env.VITE_FUNCTIONS_URL;
  return out;
}

export function resolveConfig(file: Partial<Config> | null, origin: string): Config {
  const merged: Partial<Config> = { ...fromEnv(), ...(file ?? {}) };
  const mode: Mode = merged.mode === "supabase" || (!merged.mode && merged.supabaseUrl) ? "supabase" : "local";
  if (mode === "supabase" && (!merged.supabaseUrl || !merged.supabaseAnonKey)) {
    throw new Error("config: supabase mode needs supabaseUrl and supabaseAnonKey");
  }
  const functionsUrl = (
    merged.functionsUrl ?? (mode === "supabase" ? `${merged.supabaseUrl}/functions/v1` : `${origin}/functions/v1`)
  ).replace(/\/+$/, "");
  return {
    mode,
    functionsUrl,
    supabaseUrl: merged.supabaseUrl,
    supabaseAnonKey: merged.supabaseAnonKey,
    realtime: mode === "supabase" ? "supabase" : "sse",
  };
}

let current: Config | null = null;

export async function loadConfig(): Promise<Config> {
  let file: Partial<Config> | null = null;
  try {
    // No cache option: index.html preloads this file, and a request with its own cache mode would not
    // take the preloaded answer. `tokentra serve` sends it with no-store; a static host should too.
    const res = await fetch(`${import.meta.env.BASE_URL}config.json`);
    if (res.ok) file = (await res.json()) as Partial<Config>;
  } catch {
    file = null; // no runtime file: env or the local default
  }
  current = resolveConfig(file, window.location.origin);
  return current;
}

export function config(): Config {
  if (!current) throw new Error("config not loaded");
  return current;
}
