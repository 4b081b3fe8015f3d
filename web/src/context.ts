// What every screen reads: the client, the person, their org and role, the sync engine — and
// hooks that re-render when the local copy changes.
import type { Session, SupabaseClient } from '@supabase/supabase-js';
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { AppConfig } from './api';
import { type Row, type Table, rowsOf, vocabulary } from './local';
import type { Membership } from './session';
import type { Sync, SyncStatus } from './sync';

/** The signed-in app's shared state. */
export interface Ctx {
  supabase: SupabaseClient;
  config: AppConfig;
  session: Session;
  org: Membership;
  orgs: Membership[];
  sync: Sync;
  navigate: (path: string) => void;
}

export const AppContext = createContext<Ctx | null>(null);

/** The shared state (inside the signed-in app). */
export function useApp(): Ctx {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error('useApp outside the signed-in app');
  return ctx;
}

/** The sync status, re-rendered on every change. */
export function useStatus(): SyncStatus {
  const { sync } = useApp();
  const [, tick] = useState(0);
  useEffect(() => sync.subscribe(() => tick((n) => n + 1)), [sync]);
  return sync.status;
}

/** One read of each table per revision of the local copy, shared by every component that
 * shows it (a list of entries would otherwise read the vocabulary once per entry). */
const reads = new WeakMap<Sync, Map<string, { revision: number; rows: Promise<Row[]> }>>();

function read(sync: Sync, table: Table): Promise<Row[]> {
  let tables = reads.get(sync);
  if (!tables) reads.set(sync, (tables = new Map()));
  const cached = tables.get(table);
  if (cached && cached.revision === sync.revision) return cached.rows;
  const shared = table === 'activity_types' || table === 'work_modes' || table === 'task_categories';
  const rows = shared ? vocabulary(sync.db, table, sync.org) : rowsOf(sync.db, table, sync.org);
  tables.set(table, { revision: sync.revision, rows });
  return rows;
}

/** The local rows of `table` (with the shared vocabulary for vocabulary tables). */
export function useRows(table: Table): Row[] {
  const { sync } = useApp();
  const [rows, setRows] = useState<Row[]>([]);
  const [revision, setRevision] = useState(sync.revision);
  useEffect(() => sync.subscribe(() => setRevision(sync.revision)), [sync]);
  useEffect(() => {
    let live = true;
    void read(sync, table).then((r) => {
      if (live) setRows(r);
    });
    return () => {
      live = false;
    };
  }, [sync, table, revision]);
  return rows;
}

/** The outbox's row ids, read once per state of the outbox (shared like `read`). */
const outboxReads = new WeakMap<Sync, { key: string; ids: Promise<Set<string>> }>();

function pendingIds(sync: Sync): Promise<Set<string>> {
  const key = `${sync.revision}:${sync.status.pending}`;
  const cached = outboxReads.get(sync);
  if (cached && cached.key === key) return cached.ids;
  const ids = sync.db.getAllFromIndex('outbox', 'by_org', sync.org).then((m) => new Set(m.map((x) => x.id)));
  outboxReads.set(sync, { key, ids });
  return ids;
}

/** Ids of the rows with changes still in the outbox. */
export function usePendingIds(): Set<string> {
  const { sync } = useApp();
  const status = useStatus();
  const [ids, setIds] = useState<Set<string>>(new Set());
  useEffect(() => {
    void pendingIds(sync).then(setIds);
  }, [sync, status.pending, sync.revision]);
  return ids;
}

/** Names by id for a table (projects, vocabulary). */
export function useNames(table: Table): Map<string, string> {
  const rows = useRows(table);
  return new Map(rows.map((r) => [r.id, String(r.name ?? '')]));
}

/** A clock ticking every second while `on`. */
export function useNow(on = true): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!on) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [on]);
  return now;
}
