// The one module that speaks HTTP to the query functions. Every call carries the user's JWT; answers
// are unwrapped from the `{"data": ..., "meta": ...}` envelope when they have one, so the pages work
// with bare answers and enveloped ones alike; money may arrive as a JSON number or a decimal string
// and is read with num().
import { currentSession, signOut } from "./auth";
import { config } from "./config";

export type Params = Record<string, string | number | boolean | null | undefined>;
export type Json = Record<string, any>;

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export function num(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value.trim() !== "") return Number(value);
  return 0;
}

export function query(params: Params = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { ...extra };
  const s = currentSession();
  if (s) h.authorization = `Bearer ${s.accessToken}`;
  const cfg = config();
  if (cfg.mode === "supabase" && cfg.supabaseAnonKey) h.apikey = cfg.supabaseAnonKey;
  return h;
}

/** `{data, meta}` -> data (and meta); anything else is the data itself. */
export function unwrap<T>(body: unknown): { data: T; meta: Json | null } {
  if (body && typeof body === "object" && !Array.isArray(body) && "data" in body) {
    const b = body as { data: T; meta?: Json };
    return { data: b.data, meta: b.meta ?? null };
  }
  return { data: body as T, meta: null };
}

async function request(method: string, path: string, body?: unknown, accept = "application/json"): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${config().functionsUrl}${path}`, {
      method,
      headers: headers({ accept, ...(body === undefined ? {} : { "content-type": "application/json" }) }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    throw new ApiError(0, "unreachable", `the functions at ${config().functionsUrl} did not answer (${exc})`);
  }
  if (res.status === 401) {
    await signOut();
    throw new ApiError(401, "unauthorized", "your session has ended; sign in again");
  }
  if (!res.ok) {
    const err = await res.json().catch(() => ({}));
    const e = unwrap<Json>(err).data ?? {};
    const detail = e.error && typeof e.error === "object" ? e.error : e;
    throw new ApiError(res.status, String(detail.error ?? detail.code ?? "error"), String(detail.message ?? res.statusText));
  }
  return res;
}

export async function getFull<T>(path: string, params?: Params): Promise<{ data: T; meta: Json | null }> {
  const res = await request("GET", path + query(params));
  return unwrap<T>(await res.json());
}

export async function get<T>(path: string, params?: Params): Promise<T> {
  return (await getFull<T>(path, params)).data;
}

export async function send<T>(method: "POST" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<T> {
  const res = await request(method, path, body);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return unwrap<T>(text ? JSON.parse(text) : null).data;
}

/** Save what a function answers with `Accept: text/csv` (exact decimals, as the server writes them). */
export async function downloadCsv(path: string, params: Params, filename: string): Promise<void> {
  const res = await request("GET", path + query(params), undefined, "text/csv");
  saveBlob(await res.blob(), filename);
}

export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A 404 is an answer here (nothing written yet), not an error. */
async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 404) return null;
    throw exc;
  }
}

// ---------------------------------------------------------------- the endpoints the pages use
export interface Organization {
  id: string;
  name: string;
  role: string;
  permissions: string[];
}

export interface Me {
  user_id: string;
  email: string | null;
  organizations: Organization[];
}

export const api = {
  me: () => get<Me>("/me"),
  overview: (org: string) => get<Json>("/dashboard/overview", { org_id: org }),
  forecast: (org: string) => get<Json>("/forecast", { org_id: org }),
  costs: (params: Params) => getFull<Json[]>("/costs", params),
  timeseries: (params: Params) => getFull<Json[]>("/usage/timeseries", params),
  budgets: (org: string) => get<Json[]>("/budgets", { org_id: org }),
  createBudget: (body: Json) => send<Json>("POST", "/budgets", body),
  updateBudget: (id: string, body: Json) => send<Json>("PATCH", `/budgets/${id}`, body),
  deleteBudget: (id: string) => send<void>("DELETE", `/budgets/${id}`),
  alertEvents: (org: string, status?: string) => get<Json[]>("/alerts/events", { org_id: org, status, limit: 200 }),
  acknowledge: (id: string) => send<Json>("POST", `/alerts/events/${id}/acknowledge`),
  resolve: (id: string) => send<Json>("POST", `/alerts/events/${id}/resolve`),
  retryDelivery: (id: string) => send<Json>("POST", `/alerts/deliveries/${id}/retry`),
  alertRules: (org: string) => get<Json[]>("/alerts", { org_id: org }),
  createRule: (body: Json) => send<Json>("POST", "/alerts", body),
  updateRule: (id: string, body: Json) => send<Json>("PATCH", `/alerts/${id}`, body),
  deleteRule: (id: string) => send<void>("DELETE", `/alerts/${id}`),
  anomalies: (params: Params) => get<Json[]>("/anomalies", params),
  anomalyExplanation: (id: string) => orNull(get<Json>(`/anomalies/${id}/explanation`)),
  recommendations: (params: Params) => get<Json[]>("/optimization/recommendations", params),
  applyRecommendation: (id: string, share: number) =>
    send<Json>("POST", `/optimization/recommendations/${id}/apply`, { traffic_share: share }),
  dismissRecommendation: (id: string, reason: string) =>
    send<Json>("POST", `/optimization/recommendations/${id}/dismiss`, { reason }),
  recommendationExplanation: (id: string) => orNull(get<Json>(`/optimization/recommendations/${id}/explanation`)),
  consensus: (id: string) => get<Json>(`/optimization/recommendations/${id}/consensus`),
  members: (org: string) => get<Json[]>("/admin/members", { org_id: org }),
  setMemberRole: (org: string, userId: string, role: string) =>
    send<Json>("PATCH", `/admin/members/${userId}`, { org_id: org, role }),
  removeMember: (org: string, userId: string) => send<void>("DELETE", `/admin/members/${userId}?org_id=${org}`),
  apiKeys: (org: string) => get<Json[]>("/admin/api-keys", { org_id: org }),
  createApiKey: (body: Json) => send<Json>("POST", "/admin/api-keys", body),
  revokeApiKey: (id: string) => send<Json>("POST", `/admin/api-keys/${id}/revoke`),
  virtualKeys: (org: string) => get<Json[]>("/virtual-keys", { org_id: org }),
  revokeVirtualKey: (org: string, id: string) => send<void>("POST", `/virtual-keys/${id}/revoke`, { org_id: org }),
  reconciliation: (params: Params) => getFull<Json[]>("/reconciliation", params),
  reprice: (body: Json) => send<Json>("POST", "/reconciliation/reprice", body),
  reports: (params: Params) => getFull<Json[]>("/reports", params),
  report: (id: string) => orNull(get<Json>(`/reports/${id}`)),
  ask: (org: string, question: string) => send<Json>("POST", "/assistant/query", { org_id: org, query: question }),
  analysts: (org: string) => get<Json[]>("/admin/analysts", { org_id: org }),
  createAnalyst: (body: Json) => send<Json>("POST", "/admin/analysts", body),
  dropAnalyst: (role: string) => send<void>("DELETE", `/admin/analysts/${role}`),
};
