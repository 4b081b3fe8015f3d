// The app: signed out, the sign-in screen; signed in, the shell (navigation, org switcher, the
// running timer, sync state and conflicts) around the screen the path names.
import { isAuthRetryableFetchError, type Session, type SupabaseClient } from '@supabase/supabase-js';
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type AppConfig, storedSession } from './api';
import { AppContext, type Ctx, useApp, useNow, useRows, useStatus } from './context';
import { clock, entrySeconds, running } from './format';
import { administers, chooseOrg, chosenOrg, type Membership, memberships, rememberedMemberships, startSync } from './session';
import { AdminScreen } from './screens/admin';
import { AuthScreen } from './screens/auth';
import { WeekScreen } from './screens/entries';
import { TimesheetScreen } from './screens/timesheets';
import { TodayScreen } from './screens/today';
import type { Sync } from './sync';

/** A screen loaded on first use (the dashboard brings Chart.js: not part of the first load;
 * the service worker still caches it for offline use). */
function lazyScreen(load: () => Promise<ComponentType>): ComponentType {
  let loaded: ComponentType | null = null;
  return function Lazy() {
    const [screen, setScreen] = useState<ComponentType | null>(() => loaded);
    useEffect(() => {
      if (!loaded) void load().then((c) => setScreen(() => (loaded = c)));
    }, []);
    const Screen = screen;
    return Screen ? <Screen /> : <p class="loading" role="status">Loading…</p>;
  };
}

const DashboardScreen = lazyScreen(() => import('./screens/dashboard').then((m) => m.DashboardScreen));

const SCREENS = [
  ['/', 'Today'],
  ['/week', 'Week'],
  ['/dashboard', 'Dashboard'],
  ['/timesheets', 'Timesheets'],
  ['/admin', 'Admin'],
] as const;

export function App({ supabase, config }: { supabase: SupabaseClient; config: AppConfig }) {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  useEffect(() => {
    // An expired session cannot be refreshed offline, and supabase-js keeps trying for a while:
    // the app opens at once on the stored one (whose local copy to show) and follows what
    // supabase-js settles on — a refreshed session, or none if it was revoked.
    const stored = storedSession();
    const opened = (current: Session | null | undefined) => current ?? stored ?? current;
    if (stored && !navigator.onLine) setSession(stored);
    const waited = setTimeout(() => setSession(opened), 1500);
    void supabase.auth.getSession().then(({ data, error }) => {
      clearTimeout(waited);
      if (data.session) setSession(data.session);
      else if (isAuthRetryableFetchError(error)) setSession(opened);
      else setSession(null);
    });
    const { data } = supabase.auth.onAuthStateChange((event, s) => {
      // The first state is getSession's to decide (above).
      if (event !== 'INITIAL_SESSION') setSession(s);
    });
    return () => {
      clearTimeout(waited);
      data.subscription.unsubscribe();
    };
  }, [supabase]);
  if (session === undefined) return <p class="loading" role="status">Loading…</p>;
  if (!session) return <AuthScreen supabase={supabase} />;
  return <SignedIn key={session.user.id} supabase={supabase} config={config} session={session} />;
}

function SignedIn({ supabase, config, session }: { supabase: SupabaseClient; config: AppConfig; session: Session }) {
  // The remembered orgs first (offline starts are instant), then Tally's answer.
  const [orgs, setOrgs] = useState<Membership[] | null>(() => rememberedMemberships(session.user.id));
  const [org, setOrg] = useState<Membership | null>(() => (orgs ? (chosenOrg(orgs) ?? null) : null));
  const [sync, setSync] = useState<Sync | null>(null);
  const [path, setPath] = useState(location.pathname);

  useEffect(() => {
    void memberships(supabase, session.user.id).then((list) => {
      setOrgs(list);
      setOrg((current) => list.find((o) => o.org_id === current?.org_id) ?? chosenOrg(list) ?? null);
    });
  }, [supabase, session.user.id]);

  useEffect(() => {
    if (!org) return;
    let engine: Sync | null = null;
    let live = true;
    void startSync(supabase, session, org.org_id).then((s) => {
      if (live) {
        engine = s;
        setSync(s);
      } else {
        void s.stop();
      }
    });
    return () => {
      live = false;
      setSync(null);
      if (engine) void engine.stop();
    };
  }, [supabase, session, org?.org_id]);

  useEffect(() => {
    const back = () => setPath(location.pathname);
    window.addEventListener('popstate', back);
    return () => window.removeEventListener('popstate', back);
  }, []);

  if (!orgs) return <p class="loading" role="status">Loading your organizations…</p>;
  if (!org) {
    return (
      <main id="main" class="auth">
        <h1>Tally</h1>
        <p>You do not belong to an organization yet: ask an owner or admin to add {session.user.email}.</p>
        <button type="button" onClick={() => void supabase.auth.signOut()}>Sign out</button>
      </main>
    );
  }
  if (!sync) return <p class="loading" role="status">Opening {org.name}…</p>;
  const navigate = (to: string) => {
    history.pushState(null, '', to);
    setPath(to);
  };
  const ctx: Ctx = { supabase, config, session, org, orgs, sync, navigate };
  return (
    <AppContext.Provider value={ctx}>
      <a class="skip" href="#main">Skip to content</a>
      <Header
        onOrg={(id) => {
          chooseOrg(id);
          setOrg(orgs.find((o) => o.org_id === id) ?? org);
        }}
        path={path}
      />
      <Conflicts />
      <Screen path={path} />
    </AppContext.Provider>
  );
}

function Screen({ path }: { path: string }) {
  const { org } = useApp();
  switch (path) {
    case '/week':
      return <WeekScreen />;
    case '/dashboard':
      return <DashboardScreen />;
    case '/timesheets':
      return <TimesheetScreen />;
    case '/admin':
      return administers(org.role) ? (
        <AdminScreen />
      ) : (
        <main id="main">
          <h2>Admin</h2>
          <p role="alert">Only the owners and admins of {org.name} can open the admin screens.</p>
        </main>
      );
    default:
      return <TodayScreen />;
  }
}

function Header({ path, onOrg }: { path: string; onOrg: (id: string) => void }) {
  const { supabase, session, org, orgs, navigate } = useApp();
  return (
    <header class="top">
      <div class="brand">Tally</div>
      <nav aria-label="Screens">
        <ul>
          {SCREENS.filter(([to]) => to !== '/admin' || administers(org.role)).map(([to, label]) => (
            <li key={to}>
              <a href={to} aria-current={path === to ? 'page' : undefined}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(to);
                }}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <RunningTimer />
      <SyncBadge />
      {orgs.length > 1 ? (
        <label class="org">
          <span class="visually-hidden">Organization</span>
          <select value={org.org_id} onChange={(e) => onOrg(e.currentTarget.value)}>
            {orgs.map((o) => (
              <option key={o.org_id} value={o.org_id}>{o.name}</option>
            ))}
          </select>
        </label>
      ) : (
        <span class="org">{org.name}</span>
      )}
      <span class="who" title={session.user.email}>{org.role}</span>
      <button type="button" onClick={() => void supabase.auth.signOut()}>Sign out</button>
    </header>
  );
}

/** The running timer, on every screen, with its stop button. */
function RunningTimer() {
  const { sync } = useApp();
  const current = useRows('time_logs').find((l) => running(l) && l.user_id === sync.userId);
  const now = useNow(!!current);
  if (!current) return null;
  return (
    <div class="running" role="timer" aria-label="Running timer">
      <span class="dot" aria-hidden="true" />
      <span>{String(current.comment ?? 'Timer')}</span>
      <strong data-testid="timer-elapsed">{clock(entrySeconds(current, now))}</strong>
      <button type="button" onClick={() => void sync.write('time_logs', current.id, { ended_at: new Date().toISOString() })}>
        Stop timer
      </button>
    </div>
  );
}

/** Online or not, and how many changes wait. */
function SyncBadge() {
  const status = useStatus();
  return (
    <p class={`sync ${status.online ? 'on' : 'off'}`} role="status" data-testid="sync-status">
      <span>{status.online ? 'Online' : 'Offline'}</span>
      {status.pending > 0 && <span data-testid="pending"> · {status.pending} pending</span>}
      {status.syncing && <span> · syncing</span>}
    </p>
  );
}

/** The changes the server did not take, with what was lost. */
function Conflicts() {
  const { sync } = useApp();
  const status = useStatus();
  if (status.conflicts.length === 0) return null;
  return (
    <section class="conflicts" aria-labelledby="conflicts-title">
      <h2 id="conflicts-title">{status.conflicts.length} change{status.conflicts.length > 1 ? 's' : ''} not kept</h2>
      <ul>
        {status.conflicts.map((c) => (
          <li key={c.mutation_id} data-conflict-id={c.id}>
            <p>
              {c.message}. Your change:{' '}
              <code>{c.lost === 'delete' ? 'delete' : JSON.stringify(c.lost)}</code>
              {c.server?.comment != null ? ` — now: “${String(c.server.comment)}”` : null}
            </p>
            <button type="button" onClick={() => void sync.dismiss(c.mutation_id)}>Dismiss</button>
          </li>
        ))}
      </ul>
    </section>
  );
}
