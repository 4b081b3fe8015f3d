// Offline-first sync of one org: every write lands in the local copy at once (optimistic) and
// in the outbox with a stable mutation id and the row's own client-made id; the outbox drains
// through `sync-push` on start, on `online`, when the page becomes visible, after each write
// and on a back-off timer — in one tab at a time (Web Locks). A lost answer is retried with
// the same mutation ids (the server answers `duplicate`, applying nothing twice). The server
// wins a conflict: its row replaces the local one and the lost change is listed, never dropped
// silently. `sync-pull` refreshes the copy; realtime changes and every reconnect trigger it.
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import { invoke } from './api';
import {
  type Conflict,
  type LocalDb,
  type Mutation,
  type Row,
  type Table,
  clearOrg,
  cursorOf,
  dropRow,
  getRow,
  outboxOf,
  putRow,
  setCursor,
} from './local';

/** What the app shows about sync. */
export interface SyncStatus {
  online: boolean;
  syncing: boolean;
  pending: number;
  conflicts: Conflict[];
  lastSync: string | null;
  error: string | null;
}

interface PushResult {
  mutation_id: string;
  status: 'applied' | 'conflict' | 'rejected' | 'duplicate';
  original_status?: 'applied' | 'conflict' | 'rejected';
  row?: Row;
  error?: { code: string; message: string };
}

interface PullChange {
  table: Table;
  op: 'upsert' | 'delete';
  row?: Row;
  id?: string;
}

/** Tried first, then doubled after each failure up to the cap. */
const BACKOFF_START_MS = 1000;
const BACKOFF_CAP_MS = 60_000;
/** Changes per push, and rows per pull page. */
const PUSH_BATCH = 100;
const PULL_PAGE = 500;

/** The `keys` of `row` (undefined ones as null). */
function pick(row: Row | undefined, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, row?.[k] ?? null]));
}

/** Whether `row` moved on only where `change` does not disagree: each field it sets still
 * holds its `before` value there, or already holds the value it sets (so it is no conflict). */
function untouched(row: Row, before: Record<string, unknown>, change: Record<string, unknown>): boolean {
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  return Object.entries(before).every(([k, v]) => same(row[k], v) || same(row[k], change[k]));
}

/** Thrown when Tally cannot be reached. */
class Offline extends Error {}

/** The sync engine of one person in one org. */
export class Sync {
  status: SyncStatus = {
    online: navigator.onLine,
    syncing: false,
    pending: 0,
    conflicts: [],
    lastSync: null,
    error: null,
  };
  /** Bumped whenever the local rows change, for views to reload. */
  revision = 0;
  private listeners = new Set<() => void>();
  private backoff = BACKOFF_START_MS;
  private retry?: ReturnType<typeof setTimeout>;
  private soonTimer?: ReturnType<typeof setTimeout>;
  private running = false;
  private again = false;
  private channel?: RealtimeChannel;
  /** Pulls in a row that found changes held back. */
  private heldBack = 0;

  constructor(
    private readonly supabase: SupabaseClient,
    readonly db: LocalDb,
    readonly org: string,
    readonly userId: string,
  ) {}

  /** Calls `listener` after every change of status or rows; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(rowsChanged = false): void {
    if (rowsChanged) this.revision += 1;
    this.status = { ...this.status };
    for (const listener of this.listeners) listener();
  }

  /** Starts listening (network, visibility, realtime) and syncs once. */
  async start(): Promise<void> {
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.listen();
    await this.refreshCounts();
    void this.sync();
  }

  /** Stops every trigger (sign-out, another org). */
  async stop(): Promise<void> {
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.retry);
    clearTimeout(this.soonTimer);
    if (this.channel) await this.supabase.removeChannel(this.channel);
    this.listeners.clear();
  }

  private onOnline = () => {
    this.status.online = true;
    this.emit();
    void this.sync();
  };
  private onOffline = () => {
    this.status.online = false;
    this.emit();
  };
  private onVisible = () => {
    if (document.visibilityState === 'visible') void this.sync();
  };

  /** Realtime changes are a signal to pull (the pull holds the rows, RLS-filtered by the
   * server); a (re)joined channel pulls too, so nothing said while away is missed. */
  private listen(): void {
    const filter = `org_id=eq.${this.org}`;
    let channel = this.supabase.channel(`sync:${this.org}:${crypto.randomUUID()}`);
    for (const table of ['time_logs', 'projects', 'attachments', 'teams'] as const) {
      channel = channel.on('postgres_changes', { event: '*', schema: 'public', table, filter }, () =>
        this.soon(),
      );
    }
    this.channel = channel.subscribe((state) => {
      if (state === 'SUBSCRIBED') this.soon();
    });
  }

  /** A sync shortly (changes often come in bursts). */
  soon(delay = 150): void {
    clearTimeout(this.soonTimer);
    this.soonTimer = setTimeout(() => void this.sync(), delay);
  }

  /** Pushes the outbox, uploads files kept offline, then pulls; one tab at a time. */
  async sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        const locks = navigator.locks;
        if (locks) {
          await locks.request(`tally-sync:${this.org}`, { ifAvailable: true }, async (lock) => {
            if (lock) await this.round();
          });
        } else {
          await this.round();
        }
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  private async round(): Promise<void> {
    clearTimeout(this.retry);
    if (!navigator.onLine) {
      // Nothing is sent while the device says it is offline (so changes keep merging into
      // unsent ones); the `online` event starts the next round.
      this.status.online = false;
      this.emit();
      return;
    }
    this.status.syncing = true;
    this.emit();
    try {
      while (await this.pushOnce()) {
        // Until the outbox is empty (or waits on the network).
      }
      await this.uploadFiles();
      await this.pull();
      this.status.online = true;
      this.status.error = null;
      this.status.lastSync = new Date().toISOString();
      this.backoff = BACKOFF_START_MS;
    } catch (e) {
      if (e instanceof Offline) {
        this.status.online = false;
      } else {
        this.status.error = e instanceof Error ? e.message : String(e);
      }
      const wait = this.backoff * (0.75 + Math.random() * 0.5);
      this.backoff = Math.min(this.backoff * 2, BACKOFF_CAP_MS);
      this.retry = setTimeout(() => void this.sync(), wait);
    } finally {
      this.status.syncing = false;
      await this.refreshCounts();
    }
  }

  /** Counts pending changes and loads the conflict list. */
  async refreshCounts(): Promise<void> {
    this.status.pending = (await outboxOf(this.db, this.org)).length;
    this.status.conflicts = (await this.db.getAllFromIndex('conflicts', 'by_org', this.org)).sort((a, b) =>
      a.at.localeCompare(b.at),
    );
    this.emit();
  }

  // ---- Local writes ------------------------------------------------------------------------

  /** Writes `values` to the row `id` of `table` (new when there is none): shown at once,
   * pushed when Tally can be reached. A change to a row whose earlier change is still unsent
   * joins that change (so a new entry edited offline reaches the server as one insert). */
  async write(table: Table, id: string, values: Record<string, unknown>): Promise<void> {
    const existing = await getRow(this.db, table, id);
    const queued = (await outboxOf(this.db, this.org)).filter((m) => m.table === table && m.id === id);
    const last = queued.at(-1);
    if (last?.op === 'delete') throw new Error('This entry was deleted');
    if (last && !last.sent) {
      last.values = { ...last.values, ...values };
      if (!last.creates) last.base = { ...pick(existing, Object.keys(values)), ...last.base };
      await this.db.put('outbox', last);
    } else {
      await this.db.add('outbox', {
        mutation_id: crypto.randomUUID(),
        org_id: this.org,
        table,
        op: 'upsert',
        id,
        // After a change still unanswered, the version it makes (filled in on its answer).
        base_version: last ? null : ((existing?.version as number | undefined) ?? null),
        values,
        base: existing ? pick(existing, Object.keys(values)) : undefined,
        sent: false,
        creates: !existing,
      });
    }
    const row: Row = {
      ...(existing ?? { id, org_id: this.org, user_id: this.userId, _local: true, created_at: new Date().toISOString() }),
      ...values,
    };
    await putRow(this.db, table, row);
    await this.refreshCounts();
    this.emit(true);
    this.soon(50);
  }

  /** Deletes the row `id` of `table`: at once here; on the server when pushed. A row that
   * never reached the server is simply forgotten with its unsent changes. */
  async remove(table: Table, id: string): Promise<void> {
    const existing = await getRow(this.db, table, id);
    const queued = (await outboxOf(this.db, this.org)).filter((m) => m.table === table && m.id === id);
    const unsent = queued.filter((m) => !m.sent);
    for (const m of unsent) await this.db.delete('outbox', m.seq!);
    const neverSent = queued.length > 0 && queued[0].creates && !queued[0].sent;
    if (!neverSent) {
      const sentBefore = queued.some((m) => m.sent);
      await this.db.add('outbox', {
        mutation_id: crypto.randomUUID(),
        org_id: this.org,
        table,
        op: 'delete',
        id,
        base_version: sentBefore ? null : (unsent[0]?.base_version ?? (existing?.version as number | undefined) ?? null),
        sent: false,
        creates: false,
      });
    }
    await dropRow(this.db, table, id);
    await this.refreshCounts();
    this.emit(true);
    this.soon(50);
  }

  /** Forgets a conflict once the person has read it. */
  async dismiss(mutationId: string): Promise<void> {
    await this.db.delete('conflicts', mutationId);
    await this.refreshCounts();
  }

  /** Keeps a recorded file until it can be uploaded for the log `logId`. */
  async keepFile(file: Omit<import('./local').PendingFile, 'org_id'>): Promise<void> {
    await this.db.put('files', { ...file, org_id: this.org });
    this.emit(true);
    this.soon(50);
  }

  // ---- Push ----------------------------------------------------------------------------------

  /** Pushes one batch (the first queued change of each row); false when nothing is left. */
  private async pushOnce(): Promise<boolean> {
    const queue = await outboxOf(this.db, this.org);
    if (queue.length === 0) return false;
    const seen = new Set<string>();
    const batch: Mutation[] = [];
    for (const m of queue) {
      const key = `${m.table}:${m.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      batch.push(m);
      if (batch.length === PUSH_BATCH) break;
    }
    for (const m of batch) {
      if (!m.sent) {
        m.sent = true;
        await this.db.put('outbox', m);
      }
    }
    const mutations = [];
    for (const m of batch) {
      let base = m.base_version;
      if (!m.creates && base === null) base = ((await getRow(this.db, m.table, m.id))?.version as number) ?? null;
      mutations.push({
        mutation_id: m.mutation_id,
        table: m.table,
        op: m.op,
        id: m.id,
        ...(m.creates ? {} : { base_version: base }),
        ...(m.op === 'upsert' ? { values: m.values ?? {} } : {}),
      });
    }
    const answer = await invoke<{ results: PushResult[] }>(this.supabase, 'sync-push', {
      org_id: this.org,
      mutations,
    });
    if (answer.offline) throw new Offline();
    if (!answer.data) throw new Error(answer.error ?? 'sync-push failed');
    for (const result of answer.data.results) {
      const m = batch.find((b) => b.mutation_id === result.mutation_id);
      if (m) await this.settle(m, result);
    }
    this.emit(true);
    return true;
  }

  /** Applies one push result to the local copy and the outbox. */
  private async settle(m: Mutation, result: PushResult): Promise<void> {
    const status = result.status === 'duplicate' ? (result.original_status ?? 'applied') : result.status;
    const row = result.row;
    if (status === 'conflict' && m.op === 'upsert' && row && !row.deleted_at && m.base && untouched(row, m.base, m.values ?? {})) {
      // The row moved on (classified, say) but not in the fields this change sets: the change
      // is made again on the server's version, as a new mutation.
      m.mutation_id = crypto.randomUUID();
      m.base_version = row.version ?? null;
      m.base = pick(row, Object.keys(m.values ?? {}));
      m.sent = false;
      await this.db.put('outbox', m);
      await this.store(m.table, row);
      return;
    }
    await this.db.delete('outbox', m.seq!);
    const later = (await outboxOf(this.db, this.org)).filter((x) => x.table === m.table && x.id === m.id);
    if (status === 'applied') {
      if (result.row) {
        const next = later[0];
        if (next && next.base_version === null && !next.creates) {
          next.base_version = result.row.version ?? null;
          await this.db.put('outbox', next);
        }
        await this.store(m.table, result.row);
      }
      return;
    }
    // The server won (or refused): later changes of the row go with the lost one.
    let lost: Record<string, unknown> | 'delete' = m.op === 'delete' ? 'delete' : { ...m.values };
    for (const x of later) {
      lost = x.op === 'delete' || lost === 'delete' ? 'delete' : { ...lost, ...x.values };
      await this.db.delete('outbox', x.seq!);
    }
    await this.db.put('conflicts', {
      mutation_id: m.mutation_id,
      org_id: this.org,
      table: m.table,
      id: m.id,
      kind: status === 'conflict' ? 'conflict' : 'rejected',
      lost,
      server: result.row ?? null,
      message:
        status === 'conflict'
          ? 'Changed elsewhere first: the server kept its version'
          : (result.error?.message ?? 'Refused by the server'),
      at: new Date().toISOString(),
    });
    if (result.row) {
      await this.store(m.table, result.row);
    } else if (m.creates) {
      await dropRow(this.db, m.table, m.id);
    } else {
      const { data } = await this.supabase.from(m.table).select('*').eq('id', m.id).maybeSingle();
      if (data) await this.store(m.table, data as Row);
      else await dropRow(this.db, m.table, m.id);
    }
  }

  /** Stores a server row, with this client's still-queued changes of it applied on top. */
  private async store(table: Table, row: Row): Promise<void> {
    if (row.deleted_at) {
      await dropRow(this.db, table, row.id);
      return;
    }
    const queued = (await outboxOf(this.db, this.org)).filter((m) => m.table === table && m.id === row.id);
    if (queued.some((m) => m.op === 'delete')) {
      await dropRow(this.db, table, row.id);
      return;
    }
    let merged: Row = { ...row };
    for (const m of queued) merged = { ...merged, ...m.values };
    await putRow(this.db, table, merged);
  }

  // ---- Files ---------------------------------------------------------------------------------

  /** Uploads the voice notes and screenshots kept offline, each once its log is on the server. */
  private async uploadFiles(): Promise<void> {
    const files = await this.db.getAllFromIndex('files', 'by_org', this.org);
    const queue = await outboxOf(this.db, this.org);
    for (const file of files) {
      if (queue.some((m) => m.table === 'time_logs' && m.id === file.log_id)) continue;
      const presign = await invoke<{ bucket: string; path: string; token: string }>(this.supabase, 'upload-presign', {
        org_id: this.org,
        log_id: file.log_id,
        kind: file.kind,
        filename: file.filename,
        content_type: file.content_type,
        size_bytes: file.blob.size,
      });
      if (presign.offline) throw new Offline();
      if (!presign.data) {
        await this.refuseFile(file.id, file.log_id, presign.error ?? 'The file was refused');
        continue;
      }
      const { bucket, path, token } = presign.data;
      const { error } = await this.supabase.storage
        .from(bucket)
        .uploadToSignedUrl(path, token, file.blob, { contentType: file.content_type });
      if (error) {
        const status = Number((error as { statusCode?: string }).statusCode ?? 0);
        if (!status) throw new Offline();
        await this.refuseFile(file.id, file.log_id, error.message);
        continue;
      }
      await this.db.delete('files', file.id);
    }
  }

  private async refuseFile(id: string, logId: string, message: string): Promise<void> {
    await this.db.delete('files', id);
    await this.db.put('conflicts', {
      mutation_id: id,
      org_id: this.org,
      table: 'attachments',
      id: logId,
      kind: 'rejected',
      lost: { file: id },
      server: null,
      message,
      at: new Date().toISOString(),
    });
  }

  // ---- Pull ----------------------------------------------------------------------------------

  /** Pulls every change since the stored cursor (the whole snapshot, in pages, the first time). */
  async pull(): Promise<number> {
    let cursor = await cursorOf(this.db, this.org);
    let count = 0;
    for (;;) {
      const answer = await invoke<{ changes: PullChange[]; cursor: string; has_more: boolean; held_back?: boolean }>(
        this.supabase,
        'sync-pull',
        { org_id: this.org, ...(cursor ? { cursor } : {}), limit: PULL_PAGE },
      );
      if (answer.offline) throw new Offline();
      if (answer.status === 410) {
        await clearOrg(this.db, this.org);
        this.emit(true);
        cursor = null;
        continue;
      }
      if (!answer.data) throw new Error(answer.error ?? 'sync-pull failed');
      for (const change of answer.data.changes) {
        if (change.op === 'upsert' && change.row) await this.store(change.table, change.row);
        else if (change.op === 'delete' && change.id) await dropRow(this.db, change.table, change.id);
      }
      count += answer.data.changes.length;
      cursor = answer.data.cursor;
      await setCursor(this.db, this.org, cursor);
      if (answer.data.changes.length) this.emit(true);
      if (!answer.data.has_more) {
        // Committed changes wait behind a transaction still running: ask again shortly
        // (sooner first, then less often while it runs).
        if (answer.data.held_back) {
          this.heldBack = Math.min(this.heldBack + 1, 6);
          this.soon(250 * 2 ** (this.heldBack - 1));
        } else {
          this.heldBack = 0;
        }
        return count;
      }
    }
  }
}
