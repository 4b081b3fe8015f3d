// Timesheets: submit your period; managers, admins and owners approve or reject the periods
// they may decide (the database decides who may); an approved period is shown as locked.
import { useEffect, useState } from 'preact/hooks';
import { invoke } from '../api';
import { useApp } from '../context';
import { dayLabel } from '../format';
import { reviews } from '../session';

interface Timesheet {
  id: string;
  user_id: string;
  period_start: string;
  period_end: string;
  status: 'open' | 'submitted' | 'approved' | 'rejected';
  reason: string | null;
}

export function TimesheetScreen() {
  const { supabase, session, org } = useApp();
  const [sheets, setSheets] = useState<Timesheet[]>([]);
  const [people, setPeople] = useState<Map<string, string>>(new Map());
  const [message, setMessage] = useState('');
  const [reasons, setReasons] = useState<Record<string, string>>({});

  const load = async () => {
    const { data, error } = await supabase
      .from('timesheet_periods')
      .select('id, user_id, period_start, period_end, status, reason')
      .eq('org_id', org.org_id)
      .order('period_start', { ascending: false })
      .limit(50);
    if (error) {
      setMessage('Timesheets need a connection.');
      return;
    }
    setSheets((data ?? []) as Timesheet[]);
    const { data: profiles } = await supabase.from('profiles').select('id, full_name, email');
    setPeople(new Map((profiles ?? []).map((p) => [p.id as string, String(p.full_name || p.email || 'Someone')])));
  };
  useEffect(() => {
    void load();
  }, [org.org_id]);

  const submit = async () => {
    const answer = await invoke(supabase, 'timesheet-submit', { org_id: org.org_id });
    setMessage(answer.error ? answer.error : 'This period is submitted.');
    await load();
  };
  const decide = async (id: string, decision: 'approve' | 'reject') => {
    const reason = reasons[id]?.trim();
    if (decision === 'reject' && !reason) {
      setMessage('Say why you reject it: the person sees the reason.');
      return;
    }
    const answer = await invoke(supabase, 'timesheet-review', { timesheet_id: id, decision, ...(reason ? { reason } : {}) });
    setMessage(answer.error ? answer.error : decision === 'approve' ? 'Approved.' : 'Rejected.');
    await load();
  };

  const mine = sheets.filter((s) => s.user_id === session.user.id);
  const toDecide = sheets.filter((s) => s.user_id !== session.user.id && s.status === 'submitted');
  return (
    <main id="main">
      <header class="screen-head">
        <h2>Timesheets</h2>
        {org.role !== 'viewer' && (
          <button type="button" class="primary" onClick={() => void submit()}>Submit this period</button>
        )}
      </header>
      <p role="status" class="note">{message}</p>
      <section aria-labelledby="mine-title">
        <h3 id="mine-title">Your periods</h3>
        {mine.length === 0 ? <p class="empty">Nothing submitted yet.</p> : (
          <ul class="sheets">
            {mine.map((s) => (
              <li key={s.id} data-status={s.status}>
                {dayLabel(s.period_start)} – {dayLabel(s.period_end)}: <strong>{s.status}</strong>
                {s.status === 'approved' && <span class="badge locked">locked</span>}
                {s.status === 'rejected' && s.reason && <span> — {s.reason}</span>}
              </li>
            ))}
          </ul>
        )}
      </section>
      {reviews(org.role) && (
        <section aria-labelledby="review-title">
          <h3 id="review-title">To review</h3>
          {toDecide.length === 0 ? <p class="empty">Nothing waits for you.</p> : (
            <ul class="sheets">
              {toDecide.map((s) => (
                <li key={s.id} data-timesheet-id={s.id}>
                  <p>
                    {people.get(s.user_id) ?? 'Someone'}: {dayLabel(s.period_start)} – {dayLabel(s.period_end)}
                  </p>
                  <label>
                    Reason (to reject)
                    <input value={reasons[s.id] ?? ''} onInput={(e) => setReasons({ ...reasons, [s.id]: e.currentTarget.value })} />
                  </label>
                  <div class="row">
                    <button type="button" class="primary" onClick={() => void decide(s.id, 'approve')}>Approve</button>
                    <button type="button" class="danger" onClick={() => void decide(s.id, 'reject')}>Reject</button>
                  </div>
                </li>
              ))}
            </ul>
          )}
          <ul class="sheets">
            {sheets.filter((s) => s.user_id !== session.user.id && s.status === 'approved').map((s) => (
              <li key={s.id}>
                {people.get(s.user_id) ?? 'Someone'}: {dayLabel(s.period_start)} – {dayLabel(s.period_end)}{' '}
                <span class="badge locked">locked</span>
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
