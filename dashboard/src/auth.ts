// The signed-in user's session. On a Supabase project, Supabase Auth (supabase-js keeps the token
// fresh); locally, where no auth server runs, a one-time code from `tokentra users login EMAIL`
// exchanged at the functions for the same kind of JWT.
import { config } from "./config";
import { supabaseClient } from "./supabase";

export interface Session {
  accessToken: string;
  userId: string;
  email: string | null;
  expiresAt: number; // epoch seconds
}

const KEY = "tokentra.session";
type Listener = (s: Session | null) => void;
const listeners = new Set<Listener>();
let session: Session | null = null;

function decode(token: string): { sub: string; email?: string; exp: number } {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  return JSON.parse(json);
}

export function sessionFromToken(token: string): Session {
  const claims = decode(token);
  return { accessToken: token, userId: claims.sub, email: claims.email ?? null, expiresAt: claims.exp };
}

function set(next: Session | null): void {
  session = next;
  if (config().mode === "local") {
    if (next) localStorage.setItem(KEY, JSON.stringify(next));
    else localStorage.removeItem(KEY);
  }
  listeners.forEach((l) => l(next));
}

export function currentSession(): Session | null {
  if (session && session.expiresAt * 1000 < Date.now()) set(null);
  return session;
}

export function onSession(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export async function restoreSession(): Promise<Session | null> {
  if (config().mode === "supabase") {
    const sb = await supabaseClient();
    const { data } = await sb.auth.getSession();
    sb.auth.onAuthStateChange((_event, s) => set(s ? sessionFromToken(s.access_token) : null));
    set(data.session ? sessionFromToken(data.session.access_token) : null);
    return session;
  }
  const raw = localStorage.getItem(KEY);
  if (raw) {
    try {
      session = JSON.parse(raw) as Session;
    } catch {
      session = null;
    }
  }
  return currentSession();
}

/** Local development sign-in: trade the link's one-time code for a JWT. */
export async function exchangeCode(code: string): Promise<Session> {
  const res = await fetch(`${config().functionsUrl}/auth/dev-login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message ?? `sign-in failed (HTTP ${res.status})`);
  const data = body.data ?? body;
  const s = sessionFromToken(data.access_token);
  set(s);
  return s;
}

/** Supabase Auth: email and password, or a magic link when no password is given. */
export async function signInWithSupabase(email: string, password: string | null): Promise<string | null> {
  const sb = await supabaseClient();
  if (password) {
    const { error } = await sb.auth.signInWithPassword({ email, password });
    if (error) throw new Error(error.message);
    return null;
  }
  const { error } = await sb.auth.signInWithOtp({
    email,
    options: { emailRedirectTo: window.location.href.split("#")[0] },
  });
  if (error) throw new Error(error.message);
  return `a sign-in link was sent to ${email}`;
}

/** For scripts and tests: use a JWT directly (local mode). */
export function adoptToken(token: string): Session {
  const s = sessionFromToken(token);
  set(s);
  return s;
}

export async function signOut(): Promise<void> {
  if (config().mode === "supabase") await (await supabaseClient()).auth.signOut();
  set(null);
}
