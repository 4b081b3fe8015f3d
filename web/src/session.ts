// Who is signed in and in which org: the session from supabase-js, the person's memberships
// (remembered for offline starts), the chosen org and its sync engine.
import type { Session, SupabaseClient } from '@supabase/supabase-js';
import { openLocal } from './local';
import { Sync } from './sync';

/** The roles of DESIGN §2, most rights first. */
export type Role = 'owner' | 'admin' | 'manager' | 'member' | 'viewer';

/** One org the person belongs to. */
export interface Membership {
  org_id: string;
  role: Role;
  name: string;
  timezone: string;
}

const ORGS_KEY = 'tally.orgs';
const ORG_KEY = 'tally.org';

/** The person's orgs as remembered on this device (none before the first sign-in here). */
export function rememberedMemberships(userId: string): Membership[] | null {
  const remembered = localStorage.getItem(`${ORGS_KEY}:${userId}`);
  return remembered ? (JSON.parse(remembered) as Membership[]) : null;
}

/** The person's orgs: from Tally when it answers, else as remembered. */
export async function memberships(supabase: SupabaseClient, userId: string): Promise<Membership[]> {
  const { data, error } = await supabase
    .from('memberships')
    .select('org_id, role, organizations(name, timezone)')
    .eq('user_id', userId)
    .order('created_at');
  const key = `${ORGS_KEY}:${userId}`;
  if (error || !data) return rememberedMemberships(userId) ?? [];
  const orgs = data.map((m) => {
    const org = (m.organizations ?? {}) as unknown as { name?: string; timezone?: string };
    return {
      org_id: m.org_id as string,
      role: m.role as Role,
      name: org.name ?? 'Organization',
      timezone: org.timezone ?? 'UTC',
    };
  });
  localStorage.setItem(key, JSON.stringify(orgs));
  return orgs;
}

/** The org chosen last time on this device (if the person still belongs to it). */
export function chosenOrg(orgs: Membership[]): Membership | undefined {
  const id = localStorage.getItem(ORG_KEY);
  return orgs.find((o) => o.org_id === id) ?? orgs[0];
}

/** Remembers the chosen org. */
export function chooseOrg(orgId: string): void {
  localStorage.setItem(ORG_KEY, orgId);
}

/** A started sync engine for the person in `org`. */
export async function startSync(supabase: SupabaseClient, session: Session, org: string): Promise<Sync> {
  const db = await openLocal(session.user.id);
  const sync = new Sync(supabase, db, org, session.user.id);
  await sync.start();
  return sync;
}

/** Whether `role` may approve timesheets. */
export const reviews = (role: Role) => role === 'owner' || role === 'admin' || role === 'manager';
/** Whether `role` may open the admin screens. */
export const administers = (role: Role) => role === 'owner' || role === 'admin';
