// Admin (owners and admins; the database refuses anyone else whatever the screen shows):
// members and roles, projects with aliases, integrations and their webhook URLs, exports.
import { useEffect, useState } from 'preact/hooks';
import { invoke } from '../api';
import { useApp, useRows } from '../context';
import { addDays, localDay } from '../format';
import type { Role } from '../session';

const ROLES: Role[] = ['owner', 'admin', 'manager', 'member', 'viewer'];

export function AdminScreen() {
  return (
    <main id="main">
      <h2>Admin</h2>
      <Members />
      <Projects />
      <Integrations />
      <Exports />
    </main>
  );
}

interface Member {
  id: string;
  user_id: string;
  role: Role;
}

function Members() {
  const { supabase, org } = useApp();
  const [members, setMembers] = useState<Member[]>([]);
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const [message, setMessage] = useState('');
  const load = async () => {
    const { data } = await supabase.from('memberships').select('id, user_id, role').eq('org_id', org.org_id).order('created_at');
    setMembers((data ?? []) as Member[]);
    const { data: profiles } = await supabase.from('profiles').select('id, full_name, email');
    setNames(new Map((profiles ?? []).map((p) => [p.id as string, String(p.full_name || p.email || p.id)])));
  };
  useEffect(() => void load(), [org.org_id]);
  const setRole = async (m: Member, role: Role) => {
    const { error } = await supabase.from('memberships').update({ role }).eq('id', m.id);
    setMessage(error ? error.message : `${names.get(m.user_id) ?? 'Member'} is now ${role}.`);
    await load();
  };
  return (
    <section class="card" aria-labelledby="members-title">
      <h3 id="members-title">Members and roles</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">Person</th>
            <th scope="col">Role</th>
          </tr>
        </thead>
        <tbody>
          {members.map((m) => (
            <tr key={m.id}>
              <th scope="row">{names.get(m.user_id) ?? m.user_id}</th>
              <td>
                <select aria-label={`Role of ${names.get(m.user_id) ?? 'member'}`} value={m.role}
                  onChange={(e) => void setRole(m, e.currentTarget.value as Role)}>
                  {ROLES.map((r) => (
                    <option key={r} value={r}>{r}</option>
                  ))}
                </select>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p role="status" class="note">{message}</p>
    </section>
  );
}

/** Projects are synced rows: made and edited offline like entries. */
function Projects() {
  const { sync } = useApp();
  const projects = useRows('projects');
  const [name, setName] = useState('');
  const [aliases, setAliases] = useState('');
  const add = async (e: Event) => {
    e.preventDefault();
    if (!name.trim()) return;
    await sync.write('projects', crypto.randomUUID(), {
      name: name.trim(),
      aliases: aliases.split(',').map((a) => a.trim()).filter(Boolean),
    });
    setName('');
    setAliases('');
  };
  return (
    <section class="card" aria-labelledby="projects-title">
      <h3 id="projects-title">Projects</h3>
      <ul class="projects">
        {projects.map((p) => (
          <li key={p.id} data-project-id={p.id}>
            <strong>{String(p.name)}</strong>
            {Array.isArray(p.aliases) && p.aliases.length > 0 && <span class="hint"> also “{(p.aliases as string[]).join('”, “')}”</span>}
          </li>
        ))}
      </ul>
      <form onSubmit={add} class="row" aria-label="New project">
        <label>
          Project name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Aliases (comma-separated)
          <input value={aliases} onInput={(e) => setAliases(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">Add project</button>
      </form>
    </section>
  );
}

interface Integration {
  id: string;
  provider: string;
  name: string;
  enabled: boolean;
}

function Integrations() {
  const { supabase, org } = useApp();
  const [list, setList] = useState<Integration[]>([]);
  const [provider, setProvider] = useState('slack');
  const [message, setMessage] = useState('');
  const load = async () => {
    const { data } = await supabase.from('integrations').select('id, provider, name, enabled').eq('org_id', org.org_id).order('created_at');
    setList((data ?? []) as Integration[]);
  };
  useEffect(() => void load(), [org.org_id]);
  const add = async (e: Event) => {
    e.preventDefault();
    const { data, error } = await supabase
      .from('integrations')
      .insert({ org_id: org.org_id, provider, name: `${provider} of ${org.name}` })
      .select('id')
      .single();
    if (error || !data) {
      setMessage(error?.message ?? 'Refused');
      return;
    }
    const secret = await invoke<{ secret: string }>(supabase, 'integration-secret', { integration_id: data.id });
    setMessage(secret.data ? `Signing secret (shown once): ${secret.data.secret}` : (secret.error ?? ''));
    await load();
  };
  const hook = (i: Integration) => `${location.origin}/functions/v1/webhooks-ingest/${i.provider}/${i.id}`;
  return (
    <section class="card" aria-labelledby="integrations-title">
      <h3 id="integrations-title">Integrations</h3>
      <ul>
        {list.map((i) => (
          <li key={i.id}>
            <strong>{i.provider}</strong> {i.name} {i.enabled ? '' : '(off)'}
            <br />
            <label>
              Webhook URL
              <input readOnly value={hook(i)} onFocus={(e) => e.currentTarget.select()} />
            </label>
          </li>
        ))}
      </ul>
      <form onSubmit={add} class="row" aria-label="New integration">
        <label>
          Provider
          <select value={provider} onChange={(e) => setProvider(e.currentTarget.value)}>
            <option value="slack">Slack</option>
            <option value="jira">Jira</option>
            <option value="calendar">Calendar</option>
          </select>
        </label>
        <button type="submit">Connect</button>
      </form>
      <p role="status" class="note">{message}</p>
    </section>
  );
}

function Exports() {
  const { supabase, org } = useApp();
  const [format, setFormat] = useState('csv');
  const [message, setMessage] = useState('');
  const [link, setLink] = useState<string | null>(null);
  const make = async (e: Event) => {
    e.preventDefault();
    const to = localDay(new Date());
    const from = localDay(addDays(new Date(), -30));
    const answer = await invoke<{ signed_url: string; rows: number }>(supabase, 'export-create', {
      org_id: org.org_id,
      format,
      scope: 'logs',
      from,
      to,
    });
    if (answer.data) {
      setLink(answer.data.signed_url);
      setMessage(`${answer.data.rows} entries from ${from} to ${to}.`);
    } else {
      setLink(null);
      setMessage(answer.error ?? 'Refused');
    }
  };
  return (
    <section class="card" aria-labelledby="exports-title">
      <h3 id="exports-title">Exports</h3>
      <form onSubmit={make} class="row" aria-label="New export">
        <label>
          Format
          <select value={format} onChange={(e) => setFormat(e.currentTarget.value)}>
            <option value="csv">CSV</option>
            <option value="xlsx">Excel (XLSX)</option>
            <option value="parquet">Parquet</option>
          </select>
        </label>
        <button type="submit">Export the last 30 days</button>
      </form>
      <p role="status" class="note">
        {message} {link && <a href={link} download>Download</a>}
      </p>
    </section>
  );
}
