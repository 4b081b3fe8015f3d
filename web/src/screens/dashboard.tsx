// The dashboard: hours per week by project and focus vs meetings vs after-hours, drawn from the
// local copy (so offline too), a table with the same totals (and its CSV), and the risk scores
// with their reasons in words. What it covers is what row-level security gave this person —
// their own entries, their teams' for managers, the org's for owners and admins, only org
// totals for viewers; the client never filters for security.
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';
import { useEffect, useRef, useState } from 'preact/hooks';
import { useApp, useNames, useRows } from '../context';
import { addDays, dayLabel, dayOf, entryMinutes, localDay, minutes, monday } from '../format';
import type { Row } from '../local';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, DoughnutController, ArcElement, Legend, Tooltip);

const WEEKS = 6;
const PALETTE = ['#2563eb', '#db2777', '#059669', '#d97706', '#7c3aed', '#0891b2', '#dc2626', '#4b5563'];

/** Whether a log started outside 09:00–18:00 on a weekday, or on a weekend. */
function afterHours(log: Row): boolean {
  if (!log.started_at) return false;
  const d = new Date(log.started_at as string);
  const day = d.getDay();
  const h = d.getHours() + d.getMinutes() / 60;
  return day === 0 || day === 6 || h < 9 || h >= 18;
}

export function DashboardScreen() {
  const { org } = useApp();
  const logs = useRows('time_logs');
  const projectNames = useNames('projects');
  const modes = useRows('work_modes');
  const first = addDays(monday(new Date()), -7 * (WEEKS - 1));
  const weeks = Array.from({ length: WEEKS }, (_, i) => localDay(addDays(first, 7 * i)));
  const from = weeks[0];

  const counted = logs.filter((l) => dayOf(l) >= from);
  const weekOf = (log: Row) => {
    const [y, m, d] = dayOf(log).split('-').map(Number);
    return localDay(monday(new Date(y, m - 1, d)));
  };
  const byProject = new Map<string, number[]>();
  for (const log of counted) {
    const name = log.project_id ? (projectNames.get(log.project_id as string) ?? 'Project') : 'No project';
    const row = byProject.get(name) ?? Array(WEEKS).fill(0);
    row[weeks.indexOf(weekOf(log))] += entryMinutes(log);
    byProject.set(name, row);
  }
  const modeKey = new Map(modes.map((m) => [m.id, String(m.key ?? '')]));
  const mix = { focus: 0, meetings: 0, afterHours: 0, other: 0 };
  for (const log of counted) {
    const m = entryMinutes(log);
    const key = modeKey.get(log.work_mode_id as string);
    if (afterHours(log)) mix.afterHours += m;
    else if (key === 'deep_work') mix.focus += m;
    else if (key === 'meeting') mix.meetings += m;
    else mix.other += m;
  }
  const total = counted.reduce((s, l) => s + entryMinutes(l), 0);
  const rows = [...byProject.entries()].sort((a, b) => a[0].localeCompare(b[0]));

  const csv = () => {
    const lines = [['project', ...weeks, 'total'].join(',')];
    for (const [name, mins] of rows) {
      lines.push([JSON.stringify(name), ...mins.map((m) => Math.round(m)), Math.round(mins.reduce((a, b) => a + b, 0))].join(','));
    }
    const url = URL.createObjectURL(new Blob([lines.join('\n') + '\n'], { type: 'text/csv' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `tally-hours-${from}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <main id="main">
      <header class="screen-head">
        <h2>Dashboard</h2>
        <p>
          Last {WEEKS} weeks: <strong data-testid="dashboard-total">{minutes(total)}</strong>
        </p>
      </header>
      {org.role === 'viewer' && <OrgTotals />}
      <div class="charts">
        <figure class="card">
          <figcaption>Hours per week by project</figcaption>
          <ChartCanvas
            label="Hours per week by project"
            config={{
              type: 'bar',
              data: {
                labels: weeks.map(dayLabel),
                datasets: rows.map(([name, mins], i) => ({
                  label: name,
                  data: mins.map((m) => +(m / 60).toFixed(2)),
                  backgroundColor: PALETTE[i % PALETTE.length],
                })),
              },
              options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'hours' } } } },
            }}
          />
        </figure>
        <figure class="card">
          <figcaption>Focus, meetings and after hours</figcaption>
          <ChartCanvas
            label="Focus, meetings and after hours"
            config={{
              type: 'doughnut',
              data: {
                labels: ['Focus', 'Meetings', 'After hours', 'Other'],
                datasets: [{ data: [mix.focus, mix.meetings, mix.afterHours, mix.other].map((m) => +(m / 60).toFixed(2)), backgroundColor: PALETTE.slice(0, 4) }],
              },
              options: { animation: false, responsive: true, maintainAspectRatio: false },
            }}
          />
          <p class="mix">
            Focus {minutes(mix.focus)} · meetings {minutes(mix.meetings)} · after hours {minutes(mix.afterHours)} · other {minutes(mix.other)}
          </p>
        </figure>
      </div>
      <table class="totals">
        <caption>
          Minutes per project and week <button type="button" onClick={csv}>Download CSV</button>
        </caption>
        <thead>
          <tr>
            <th scope="col">Project</th>
            {weeks.map((w) => (
              <th scope="col" key={w}>{dayLabel(w)}</th>
            ))}
            <th scope="col">Total</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([name, mins]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              {mins.map((m, i) => (
                <td key={i}>{Math.round(m)}</td>
              ))}
              <td data-testid={`project-total-${name}`}>{Math.round(mins.reduce((a, b) => a + b, 0))}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Risks />
    </main>
  );
}

/** A Chart.js chart on a canvas, redrawn when its data changes. */
function ChartCanvas({ config, label }: { config: import('chart.js').ChartConfiguration; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | null>(null);
  const key = JSON.stringify(config.data);
  useEffect(() => {
    if (!canvas.current) return;
    chart.current?.destroy();
    chart.current = new Chart(canvas.current, config);
    return () => chart.current?.destroy();
  }, [key]);
  return (
    <div class="chart-box">
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}

interface Risk {
  user_id: string;
  week_start: string;
  burnout_score: number;
  utilization: number | null;
  factors: { factor: string; points: number; sentence: string }[];
}

/** The latest risk scores RLS lets this person read, each with its reasons in words
 * (remembered for offline). */
function Risks() {
  const { supabase, org } = useApp();
  const key = `tally.risks:${org.org_id}`;
  const [risks, setRisks] = useState<Risk[]>(() => JSON.parse(localStorage.getItem(key) ?? '[]'));
  useEffect(() => {
    void supabase
      .from('risk_scores')
      .select('user_id, week_start, burnout_score, utilization, factors')
      .eq('org_id', org.org_id)
      .order('week_start', { ascending: false })
      .limit(20)
      .then(({ data, error }) => {
        if (error || !data) return;
        localStorage.setItem(key, JSON.stringify(data));
        setRisks(data as Risk[]);
      });
  }, [org.org_id]);
  if (risks.length === 0) return null;
  return (
    <section class="card" aria-labelledby="risk-title">
      <h3 id="risk-title">Burnout and utilization risk</h3>
      <ul class="risks">
        {risks.map((r) => (
          <li key={`${r.user_id}-${r.week_start}`}>
            <p>
              Week of {dayLabel(r.week_start)}: score <strong>{r.burnout_score}</strong>/100
              {r.utilization != null ? `, ${Math.round(r.utilization * 100)}% billable` : ''}
            </p>
            <ul>
              {r.factors.filter((f) => f.points > 0).map((f) => (
                <li key={f.factor}>{f.sentence}</li>
              ))}
              {r.factors.every((f) => f.points === 0) && <li>No warning signs that week.</li>}
            </ul>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Org-level totals (what a viewer may read), by week. */
function OrgTotals() {
  const { supabase, org } = useApp();
  const key = `tally.org-totals:${org.org_id}`;
  const [rows, setRows] = useState<{ starts: string; total_minutes: number }[]>(() => JSON.parse(localStorage.getItem(key) ?? '[]'));
  useEffect(() => {
    void supabase
      .from('org_period_summaries')
      .select('starts, total_minutes')
      .eq('org_id', org.org_id)
      .eq('period', 'week')
      .order('starts', { ascending: false })
      .limit(WEEKS)
      .then(({ data, error }) => {
        if (error || !data) return;
        localStorage.setItem(key, JSON.stringify(data));
        setRows(data as typeof rows);
      });
  }, [org.org_id]);
  return (
    <section class="card" aria-labelledby="org-title">
      <h3 id="org-title">{org.name}: hours per week</h3>
      {rows.length === 0 ? (
        <p>No totals yet.</p>
      ) : (
        <ul data-testid="org-totals">
          {rows.map((r) => (
            <li key={r.starts}>
              Week of {dayLabel(r.starts)}: {minutes(r.total_minutes)}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
