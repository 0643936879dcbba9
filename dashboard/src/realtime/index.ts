// One small interface for live updates, two transports chosen by configuration: Supabase Realtime
// (private broadcast channels, authorized by the RLS policy on realtime.messages) on a project, and
// locally server-sent events from the functions, which read realtime.messages as the signed-in user
// under the same policy.
import { config } from "../config";

export interface RealtimeMessage {
  topic: string;
  event: string;
  payload: any;
}

export type Status = "connecting" | "live" | "closed" | "error";

export interface RealtimeTransport {
  /** Follow topics; returns the function that stops following them. */
  subscribe(topics: string[], onMessage: (m: RealtimeMessage) => void, onStatus?: (s: Status) => void): () => void;
}

let transport: Promise<RealtimeTransport> | null = null;

export function realtime(): Promise<RealtimeTransport> {
  if (!transport) {
    transport =
      config().realtime === "supabase"
        ? import("./supabaseTransport").then((m) => m.supabaseTransport())
        : import("./sseTransport").then((m) => m.sseTransport());
  }
  return transport;
}

export function orgTopic(org: string, kind: "usage" | "alerts" | "recommendations" | "budgets"): string {
  return `org:${org}:${kind}`;
}
