// The local copy in IndexedDB, one database per person: the synced tables (what `sync-pull`
// gave, with the person's own unsent changes applied on top), the outbox of changes waiting
// for `sync-push`, the conflicts the server won, files recorded offline, and the pull cursor.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

/** The tables `sync-pull` sends and `sync-push` takes. */
export const SYNCED = [
  'time_logs',
  'projects',
  'teams',
  'activity_types',
  'work_modes',
  'task_categories',
  'attachments',
] as const;
export type Table = (typeof SYNCED)[number];

/** A row as the server stores it (the client reads it, never trusts it for security). */
export type Row = { id: string; org_id?: string | null; version?: number; [k: string]: unknown };

/** A change waiting to be pushed. `base_version` null: the version this client's previous
 * change of the row produced (filled in once that change is answered). */
export interface Mutation {
  seq?: number;
  mutation_id: string;
  org_id: string;
  table: Table;
  op: 'upsert' | 'delete';
  id: string;
  base_version: number | null;
  values?: Record<string, unknown>;
  /** The fields it changes as they were before (a conflict on other fields is rebased). */
  base?: Record<string, unknown>;
  /** Set once the change was sent: from then on it is resent as it is, never merged into. */
  sent: boolean;
  /** Whether the row is new (created by this client, never acknowledged by the server). */
  creates: boolean;
}

/** A change the server did not take: its row as the server has it, and what was lost. */
export interface Conflict {
  mutation_id: string;
  org_id: string;
  table: Table;
  id: string;
  kind: 'conflict' | 'rejected';
  lost: Record<string, unknown> | 'delete';
  server: Row | null;
  message: string;
  at: string;
}

/** A voice note or screenshot kept until it can be uploaded. */
export interface PendingFile {
  id: string;
  org_id: string;
  log_id: string;
  kind: 'voice' | 'image';
  filename: string;
  content_type: string;
  blob: Blob;
}

interface Schema extends DBSchema {
  rows: {
    key: [string, string];
    value: Row & { table: Table; org_key: string };
    indexes: { by_table: [string, string] };
  };
  outbox: { key: number; value: Mutation; indexes: { by_org: string; by_row: string } };
  conflicts: { key: string; value: Conflict; indexes: { by_org: string } };
  files: { key: string; value: PendingFile; indexes: { by_org: string } };
  meta: { key: string; value: unknown };
}

export type LocalDb = IDBPDatabase<Schema>;

/** Opens (creating on first use) the local database of `userId`. */
export function openLocal(userId: string): Promise<LocalDb> {
  return openDB<Schema>(`tally-${userId}`, 1, {
    upgrade(db) {
      const rows = db.createObjectStore('rows', { keyPath: ['table', 'id'] });
      rows.createIndex('by_table', ['table', 'org_key']);
      const outbox = db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
      outbox.createIndex('by_org', 'org_id');
      outbox.createIndex('by_row', 'id');
      db.createObjectStore('conflicts', { keyPath: 'mutation_id' }).createIndex('by_org', 'org_id');
      db.createObjectStore('files', { keyPath: 'id' }).createIndex('by_org', 'org_id');
      db.createObjectStore('meta');
    },
  });
}

/** Rows shared by every org (the default vocabulary) are filed under this org key. */
const SHARED = '*';

/** Every row of `table` in `org`. */
export async function rowsOf(db: LocalDb, table: Table, org: string): Promise<Row[]> {
  const own = await db.getAllFromIndex('rows', 'by_table', [table, org]);
  return own.filter((r) => !r.deleted_at);
}

/** The org's rows of `table` plus the rows every org shares (the default vocabulary). */
export async function vocabulary(db: LocalDb, table: Table, org: string): Promise<Row[]> {
  const shared = await db.getAllFromIndex('rows', 'by_table', [table, SHARED]);
  return [...shared.filter((r) => !r.deleted_at), ...(await rowsOf(db, table, org))];
}

/** Stores a row of `table` (as given: the caller merges). */
export async function putRow(db: LocalDb, table: Table, row: Row): Promise<void> {
  await db.put('rows', { ...row, table, org_key: row.org_id ?? SHARED });
}

/** One row of `table`, or undefined. */
export async function getRow(db: LocalDb, table: Table, id: string): Promise<Row | undefined> {
  return db.get('rows', [table, id]);
}

/** Removes a row of `table`. */
export async function dropRow(db: LocalDb, table: Table, id: string): Promise<void> {
  await db.delete('rows', [table, id]);
}

/** The org's outbox in the order the changes were made. */
export async function outboxOf(db: LocalDb, org: string): Promise<Mutation[]> {
  const all = await db.getAllFromIndex('outbox', 'by_org', org);
  return all.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
}

/** The pull cursor of `org` (null before the first pull). */
export async function cursorOf(db: LocalDb, org: string): Promise<string | null> {
  return ((await db.get('meta', `cursor:${org}`)) as string | undefined) ?? null;
}

/** Stores the pull cursor of `org`. */
export async function setCursor(db: LocalDb, org: string, cursor: string | null): Promise<void> {
  await db.put('meta', cursor, `cursor:${org}`);
}

/** Forgets every synced row of `org` (a resync), keeping its outbox and conflicts. */
export async function clearOrg(db: LocalDb, org: string): Promise<void> {
  const tx = db.transaction('rows', 'readwrite');
  for (const row of await tx.store.getAll()) {
    if (row.org_id === org) await tx.store.delete([row.table, row.id]);
  }
  await tx.done;
}
