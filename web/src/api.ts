// The one door to Tally: supabase-js with the anon key, served by Tally itself at
// `/app-config.json` (remembered for offline starts). The bundle holds no key at all.
import { createClient, type Session, type SupabaseClient } from '@supabase/supabase-js';

/** What the app needs to know about the Tally that serves it. */
export interface AppConfig {
  anon_key: string;
  review_threshold: number;
}

const CONFIG_KEY = 'tally.config';
/** Where supabase-js keeps the session. */
const SESSION_KEY = 'tally.auth';

/** The session supabase-js stored, even expired: offline, it still says whose local copy to
 * open (nothing reaches Tally until supabase-js has refreshed it, once back online). */
export function storedSession(): Session | null {
  try {
    const stored = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    return stored?.user?.id ? (stored as Session) : null;
  } catch {
    return null;
  }
}

/** The served config, or the one remembered from the last visit when offline. */
export async function loadConfig(): Promise<AppConfig> {
  try {
    const answer = await fetch('/app-config.json', { cache: 'no-cache' });
    if (answer.ok) {
      const config = (await answer.json()) as AppConfig;
      localStorage.setItem(CONFIG_KEY, JSON.stringify(config));
      return config;
    }
  } catch {
    // Offline: the remembered config below.
  }
  const remembered = localStorage.getItem(CONFIG_KEY);
  if (remembered) return JSON.parse(remembered) as AppConfig;
  throw new Error('Tally cannot be reached and this browser has not visited it before.');
}

/** A supabase-js client for the Tally at `url`. */
export function connect(url: string, config: AppConfig): SupabaseClient {
  return createClient(url, config.anon_key, {
    auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: true, storageKey: SESSION_KEY },
    // Reads fail at once when offline: the local copy answers, and sync retries on its own.
    db: { retry: false },
  });
}

/** A function's answer, or its error message (supabase-js's FunctionsHttpError carries the
 * response; a network failure has none). */
export async function invoke<T>(
  supabase: SupabaseClient,
  name: string,
  body: unknown,
): Promise<{ data?: T; error?: string; offline?: boolean; status?: number }> {
  const { data, error } = await supabase.functions.invoke(name, { body: body as Record<string, unknown> });
  if (!error) return { data: data as T };
  const context = (error as { context?: Response }).context;
  if (context instanceof Response) {
    let message = error.message;
    try {
      const payload = await context.clone().json();
      message = payload.message ?? payload.error ?? message;
    } catch {
      // Not JSON: the status says enough.
    }
    return { error: message, status: context.status };
  }
  return { error: 'offline', offline: true };
}
