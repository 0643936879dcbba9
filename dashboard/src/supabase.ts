// One supabase-js client for auth and Realtime on a Supabase project, loaded only in that mode so the
// local dashboard never downloads it.
import type { SupabaseClient } from "@supabase/supabase-js";
import { config } from "./config";

let client: Promise<SupabaseClient> | null = null;

export function supabaseClient(): Promise<SupabaseClient> {
  if (!client) {
    const { supabaseUrl, supabaseAnonKey } = config();
    client = import("@supabase/supabase-js").then(({ createClient }) =>
      createClient(supabaseUrl!, supabaseAnonKey!, { auth: { persistSession: true, autoRefreshToken: true } }),
    );
  }
  return client;
}
