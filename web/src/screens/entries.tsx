// Entries by day — a list with a running total per day, each entry editable and deletable —
// and the week as a calendar. Everything reads the local copy, so it works offline.
import { useState } from 'preact/hooks';
import { useApp, useNames, useNow, usePendingIds, useRows } from '../context';
import { addDays, clock, dayLabel, dayOf, entryMinutes, entrySeconds, localDay, minutes, monday, running, time } from '../format';
import type { Row } from '../local';

/** The logs of the given days, newest first, grouped by day. */
export function useEntriesByDay(days: string[]): Map<string, Row[]> {
  const logs = useRows('time_logs');
  const { session } = useApp();
  const wanted = new Set(days);
  const byDay = new Map<string, Row[]>(days.map((d) => [d, []]));
  for (const log of logs) {
    if (log.user_id !== session.user.id) continue;
    const day = dayOf(log);
    if (wanted.has(day)) byDay.get(day)!.push(log);
  }
  for (const list of byDay.values()) {
    list.sort((a, b) => String(b.started_at ?? b.created_at ?? '').localeCompare(String(a.started_at ?? a.created_at ?? '')));
  }
  return byDay;
}

export function DayList({ day, logs }: { day: string; logs: Row[] }) {
  const now = useNow(logs.some(running));
  const total = logs.reduce((sum, l) => sum + entryMinutes(l, now), 0);
  return (
    <section class="day" aria-labelledby={`day-${day}`}>
      <h3 id={`day-${day}`}>
        <span>{dayLabel(day)}</span>
        <span class="total" data-testid={`total-${day}`}>{minutes(total)}</span>
      </h3>
      {logs.length === 0 ? (
        <p class="empty">Nothing logged.</p>
      ) : (
        <ul class="entries">
          {logs.map((log) => (
            <Entry key={log.id} log={log} now={now} />
          ))}
        </ul>
      )}
    </section>
  );
}

function Entry({ log, now }: { log: Row; now: number }) {
  const { sync } = useApp();
  const projects = useNames('projects');
  const activities = useNames('activity_types');
  const modes = useNames('work_modes');
  const pending = usePendingIds();
  const [editing, setEditing] = useState(false);
  const isRunning = running(log);
  const status = String(log.status ?? 'pending');
  return (
    <li class="entry" data-entry-id={log.id} data-status={status}>
      <div class="entry-main">
        <p class="comment">{String(log.comment ?? '') || <em>No description</em>}</p>
        <p class="meta">
          {log.project_id ? <span class="tag">{projects.get(log.project_id as string) ?? 'Project'}</span> : null}
          {log.activity_type_id ? <span>{activities.get(log.activity_type_id as string)}</span> : null}
          {log.work_mode_id ? <span>{modes.get(log.work_mode_id as string)}</span> : null}
          {log.started_at ? (
            <span>
              {time(log.started_at)}–{isRunning ? 'now' : time(log.ended_at)}
            </span>
          ) : null}
          {pending.has(log.id) ? <span class="badge pending">pending sync</span> : null}
          {status === 'needs_review' ? <span class="badge review">review</span> : null}
        </p>
      </div>
      <span class="duration" data-testid="duration">
        {isRunning || log.source === 'timer' ? clock(entrySeconds(log, now)) : minutes(entryMinutes(log, now))}
      </span>
      <div class="actions">
        <button type="button" onClick={() => setEditing(!editing)} aria-expanded={editing}
          aria-label={`Edit “${String(log.comment ?? 'entry')}”`}>Edit</button>
        <button type="button" class="danger" aria-label={`Delete “${String(log.comment ?? 'entry')}”`}
          onClick={() => void sync.remove('time_logs', log.id)}>Delete</button>
      </div>
      {editing && <EntryEditor log={log} done={() => setEditing(false)} />}
    </li>
  );
}

/** Edits the comment, project and duration of an entry. */
function EntryEditor({ log, done }: { log: Row; done: () => void }) {
  const { sync } = useApp();
  const projects = useRows('projects');
  const [comment, setComment] = useState(String(log.comment ?? ''));
  const [project, setProject] = useState(String(log.project_id ?? ''));
  const [duration, setDuration] = useState(log.duration_minutes == null ? '' : String(log.duration_minutes));
  const save = async (e: Event) => {
    e.preventDefault();
    // The fields as they are now (not as last rendered: a quick Save may come first).
    const fields = (e.currentTarget as HTMLFormElement).elements;
    const field = (name: string) => (fields.namedItem(name) as HTMLInputElement | HTMLSelectElement).value;
    const comment = field('comment');
    const project = field('project');
    const duration = field('minutes');
    // Only what changed: a field left alone is no conflict with another device's edit of it.
    const values: Record<string, unknown> = {};
    if (comment !== String(log.comment ?? '')) values.comment = comment;
    if ((project || null) !== (log.project_id ?? null)) values.project_id = project || null;
    if (duration !== '' && !running(log) && Number(duration) !== log.duration_minutes) {
      const d = Number(duration);
      values.duration_minutes = d;
      if (log.started_at) values.ended_at = new Date(Date.parse(log.started_at as string) + d * 60_000).toISOString();
    }
    if (Object.keys(values).length) await sync.write('time_logs', log.id, values);
    done();
  };
  return (
    <form class="editor" onSubmit={save} aria-label="Edit entry">
      <label>
        Description
        <input name="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
      </label>
      <label>
        Project
        <select name="project" value={project} onChange={(e) => setProject(e.currentTarget.value)}>
          <option value="">No project</option>
          {projects.map((p) => (
            <option key={p.id} value={p.id}>{String(p.name)}</option>
          ))}
        </select>
      </label>
      <label>
        Minutes
        <input name="minutes" type="number" min={0} max={1440} value={duration} disabled={running(log)}
          onInput={(e) => setDuration(e.currentTarget.value)} />
      </label>
      <div class="row">
        <button type="submit" class="primary">Save</button>
        <button type="button" onClick={done}>Cancel</button>
      </div>
    </form>
  );
}

/** The week: a list per day or a calendar, with the week's total. */
export function WeekScreen() {
  const [start, setStart] = useState(() => monday(new Date()));
  const [view, setView] = useState<'list' | 'calendar'>('list');
  const days = Array.from({ length: 7 }, (_, i) => localDay(addDays(start, i)));
  const byDay = useEntriesByDay(days);
  const now = useNow(false);
  const total = [...byDay.values()].flat().reduce((s, l) => s + entryMinutes(l, now), 0);
  return (
    <main id="main">
      <header class="screen-head">
        <h2>Week of {dayLabel(days[0])}</h2>
        <div class="row">
          <button type="button" onClick={() => setStart(addDays(start, -7))}>Previous week</button>
          <button type="button" onClick={() => setStart(monday(new Date()))}>This week</button>
          <button type="button" onClick={() => setStart(addDays(start, 7))}>Next week</button>
          <button type="button" aria-pressed={view === 'calendar'}
            onClick={() => setView(view === 'list' ? 'calendar' : 'list')}>
            {view === 'list' ? 'Calendar' : 'List'}
          </button>
        </div>
      </header>
      <p class="week-total">Week total: <strong data-testid="week-total">{minutes(total)}</strong></p>
      {view === 'list' ? (
        days.map((d) => <DayList key={d} day={d} logs={byDay.get(d) ?? []} />)
      ) : (
        <Calendar days={days} byDay={byDay} />
      )}
    </main>
  );
}

/** Seven columns, each entry a block as tall as it is long. */
function Calendar({ days, byDay }: { days: string[]; byDay: Map<string, Row[]> }) {
  const projects = useNames('projects');
  return (
    <div class="calendar" role="list" aria-label="Week calendar">
      {days.map((d) => {
        const logs = byDay.get(d) ?? [];
        return (
          <div class="cal-day" role="listitem" key={d}>
            <h3>{dayLabel(d)}</h3>
            <p class="total">{minutes(logs.reduce((s, l) => s + entryMinutes(l), 0))}</p>
            {logs.map((l) => (
              <div class="cal-block" key={l.id} style={{ minHeight: `${Math.max(1.6, entryMinutes(l) / 15)}rem` }}>
                <strong>{minutes(entryMinutes(l))}</strong> {String(l.comment ?? '')}
                {l.project_id ? <span class="tag">{projects.get(l.project_id as string)}</span> : null}
              </div>
            ))}
          </div>
        );
      })}
    </div>
  );
}
