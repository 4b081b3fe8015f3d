// Today: the quick log (a line of text, a voice note, a pasted or dropped screenshot), the
// timer, the classified result of the last log with its confidences, and today's entries.
import { useEffect, useRef, useState } from 'preact/hooks';
import { invoke } from '../api';
import { useApp, useRows, useStatus } from '../context';
import { localDay, minutes, running } from '../format';
import type { Row } from '../local';
import { DayList, useEntriesByDay } from './entries';

const LAST_KEY = 'tally.last-log';

export function TodayScreen() {
  const today = localDay(new Date());
  const byDay = useEntriesByDay([today]);
  const [last, setLast] = useState(() => sessionStorage.getItem(LAST_KEY));
  const remember = (id: string) => {
    sessionStorage.setItem(LAST_KEY, id);
    setLast(id);
  };
  return (
    <main id="main">
      <h2 class="visually-hidden">Today</h2>
      <QuickLog onLogged={remember} />
      <TimerCard />
      {last && <Review id={last} />}
      <DayList day={today} logs={byDay.get(today) ?? []} />
    </main>
  );
}

/** One line, a voice note or a screenshot becomes an entry — at once, even offline. */
function QuickLog({ onLogged }: { onLogged: (id: string) => void }) {
  const { sync } = useApp();
  const [text, setText] = useState('');
  const [image, setImage] = useState<File | null>(null);
  const [recording, setRecording] = useState<MediaRecorder | null>(null);
  const [note, setNote] = useState('');

  const log = async (values: Record<string, unknown>, file?: { kind: 'voice' | 'image'; blob: Blob; name: string }) => {
    const id = crypto.randomUUID();
    await sync.write('time_logs', id, values);
    if (file) {
      await sync.keepFile({
        id: crypto.randomUUID(),
        log_id: id,
        kind: file.kind,
        filename: file.name,
        content_type: file.blob.type || 'application/octet-stream',
        blob: file.blob,
      });
    }
    onLogged(id);
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    // What the field holds now (the next line may be typed before this one is stored), and
    // the field cleared at once for it.
    const field = (e.currentTarget as HTMLFormElement).elements.namedItem('line') as HTMLInputElement;
    const comment = field.value.trim();
    const shot = image;
    if (!comment && !shot) return;
    field.value = '';
    setText('');
    setImage(null);
    if (shot) {
      await log({ comment: comment || null, source: 'screenshot' }, { kind: 'image', blob: shot, name: shot.name || 'screenshot.png' });
    } else {
      await log({ comment, source: 'manual' });
    }
    setNote('Logged.');
  };

  const takeImage = (files: FileList | null | undefined) => {
    const file = [...(files ?? [])].find((f) => f.type.startsWith('image/'));
    if (file) {
      setImage(file);
      setNote(`Screenshot ready: ${file.name || 'pasted image'}`);
    }
  };

  const record = async () => {
    if (recording) {
      recording.stop();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'].find((t) => MediaRecorder.isTypeSupported(t));
      const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      const chunks: Blob[] = [];
      recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        setRecording(null);
        const blob = new Blob(chunks, { type: recorder.mimeType || type || 'audio/webm' });
        const ext = blob.type.includes('mp4') ? 'm4a' : blob.type.includes('ogg') ? 'ogg' : 'webm';
        void log({ comment: text.trim() || null, source: 'voice' }, { kind: 'voice', blob, name: `voice-note.${ext}` }).then(() => {
          setText('');
          setNote('Voice note logged: it is transcribed once uploaded.');
        });
      };
      recorder.start();
      setRecording(recorder);
      setNote('Recording… press Stop when you are done.');
    } catch (e) {
      setNote(`The microphone is not available: ${e instanceof Error ? e.message : e}`);
    }
  };

  return (
    <form class="card quick" onSubmit={submit}
      onPaste={(e) => takeImage(e.clipboardData?.files)}
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => {
        e.preventDefault();
        takeImage(e.dataTransfer?.files);
      }}>
      <label for="quick-line">What did you work on?</label>
      <div class="row grow">
        <input id="quick-line" name="line" autocomplete="off" value={text}
          placeholder="1h45 code review on Acme, then 20 min standup"
          onInput={(e) => setText(e.currentTarget.value)} />
        <button type="submit" class="primary">Log</button>
      </div>
      <div class="row">
        <button type="button" onClick={() => void record()} aria-pressed={!!recording}>
          {recording ? 'Stop recording' : 'Record a voice note'}
        </button>
        <label class="file">
          Add a screenshot
          <input type="file" accept="image/*" onChange={(e) => takeImage(e.currentTarget.files)} />
        </label>
        <span class="hint">or paste or drop one here</span>
      </div>
      <p role="status" class="note">{note}</p>
    </form>
  );
}

/** Starts and stops the timer (the running one is also in the header, on every screen). */
function TimerCard() {
  const { sync } = useApp();
  const logs = useRows('time_logs');
  const projects = useRows('projects');
  const [comment, setComment] = useState('');
  const [project, setProject] = useState('');
  const current = logs.find((l) => running(l) && l.user_id === sync.userId);
  const start = async (e: Event) => {
    e.preventDefault();
    // The field as it is now, cleared at once (as the quick log does).
    const field = (e.currentTarget as HTMLFormElement).elements.namedItem('timer-what') as HTMLInputElement;
    const what = field.value.trim();
    field.value = '';
    setComment('');
    await startTimer(sync, { comment: what || null, project_id: project || null }, current);
  };
  return (
    <form class="card timer-card" onSubmit={start} aria-label="Timer">
      <div class="row grow">
        <label class="visually-hidden" for="timer-what">Timer description</label>
        <input id="timer-what" placeholder="What are you starting?" value={comment}
          onInput={(e) => setComment(e.currentTarget.value)} />
        <label class="visually-hidden" for="timer-project">Timer project</label>
        <select id="timer-project" value={project} onChange={(e) => setProject(e.currentTarget.value)}>
          <option value="">No project</option>
          {projects.map((p) => (
            <option key={p.id} value={p.id}>{String(p.name)}</option>
          ))}
        </select>
        <button type="submit" class="primary">{current ? 'Switch timer' : 'Start timer'}</button>
      </div>
    </form>
  );
}

/** Stops `current` (if any) and starts a timer now, as two changes in order. */
export async function startTimer(sync: import('../sync').Sync, values: Record<string, unknown>, current?: Row) {
  const now = new Date().toISOString();
  if (current) await sync.write('time_logs', current.id, { ended_at: now });
  await sync.write('time_logs', crypto.randomUUID(), { ...values, source: 'timer', started_at: now });
}

interface Extraction {
  confidences: Record<string, number>;
  status: string;
}

const FIELDS = [
  ['project_id', 'Project', 'projects'],
  ['activity_type_id', 'Activity', 'activity_types'],
  ['work_mode_id', 'Work mode', 'work_modes'],
  ['task_category_id', 'Category', 'task_categories'],
] as const;

/** The classified result of a log, field by field with its confidence; the unsure ones
 * highlighted; edited and confirmed with `log-finalize`. */
function Review({ id }: { id: string }) {
  const { sync, supabase, config } = useApp();
  const status = useStatus();
  const log = useRows('time_logs').find((l) => l.id === id);
  const options = {
    projects: useRows('projects'),
    activity_types: useRows('activity_types'),
    work_modes: useRows('work_modes'),
    task_categories: useRows('task_categories'),
  };
  const [extraction, setExtraction] = useState<Extraction | null>(null);
  const [changes, setChanges] = useState<Record<string, unknown>>({});
  const [message, setMessage] = useState('');
  const version = log?.version;
  const state = String(log?.status ?? 'pending');
  const classified = state === 'ready' || state === 'needs_review';
  const asked = useRef<string>('');

  useEffect(() => {
    if (!classified || asked.current === `${id}:${version}`) return;
    asked.current = `${id}:${version}`;
    void supabase
      .from('ai_extractions')
      .select('confidences, status')
      .eq('time_log_id', id)
      .order('created_at', { ascending: false })
      .limit(1)
      .maybeSingle()
      .then(({ data }) => setExtraction((data as Extraction | null) ?? null));
  }, [id, version, classified, supabase]);

  if (!log) return null;
  if (state === 'finalized') {
    return (
      <section class="card review" aria-labelledby="review-title">
        <h3 id="review-title">Last entry</h3>
        <p role="status">Confirmed.</p>
      </section>
    );
  }
  if (!classified) {
    return (
      <section class="card review" aria-labelledby="review-title">
        <h3 id="review-title">Last entry</h3>
        <p role="status">{state === 'failed' ? 'It could not be classified: fill it in below.' : status.online ? 'Classifying…' : 'Saved here: it is classified when you are back online.'}</p>
      </section>
    );
  }
  const threshold = config.review_threshold;
  const confirm = async () => {
    const answer = await invoke<{ log: Row }>(supabase, 'log-finalize', { log_id: id, overrides: changes });
    if (answer.data) {
      setMessage('Confirmed.');
      setChanges({});
      sync.soon(0);
    } else {
      setMessage(answer.offline ? 'Confirming needs a connection: try again when online.' : (answer.error ?? 'Refused'));
    }
  };
  const duration = changes.duration_minutes ?? log.duration_minutes;
  const timeConfidence = extraction?.confidences?.time;
  return (
    <section class="card review" aria-labelledby="review-title">
      <h3 id="review-title">Check the last entry</h3>
      <p class="comment">{String(log.comment ?? '')}</p>
      <div class="fields">
        {FIELDS.map(([field, label, table]) => {
          const confidence = extraction?.confidences?.[field];
          const low = confidence !== undefined && confidence < threshold;
          const value = (changes[field] ?? log[field] ?? '') as string;
          return (
            <label key={field} class={low ? 'field low' : 'field'} data-field={field}>
              <span>
                {label}{' '}
                {confidence !== undefined && (
                  <span class="confidence">{Math.round(confidence * 100)}% sure{low ? ' — please check' : ''}</span>
                )}
              </span>
              <select value={value} onChange={(e) => setChanges({ ...changes, [field]: e.currentTarget.value || null })}>
                <option value="">None</option>
                {options[table].map((o) => (
                  <option key={o.id} value={o.id}>{String(o.name)}</option>
                ))}
              </select>
            </label>
          );
        })}
        <label class={timeConfidence !== undefined && timeConfidence < threshold ? 'field low' : 'field'} data-field="duration_minutes">
          <span>
            Minutes{' '}
            {timeConfidence !== undefined && <span class="confidence">{Math.round(timeConfidence * 100)}% sure</span>}
          </span>
          <input type="number" min={0} max={1440} value={duration == null ? '' : String(duration)}
            onInput={(e) => setChanges({ ...changes, duration_minutes: e.currentTarget.value === '' ? null : Number(e.currentTarget.value) })} />
        </label>
      </div>
      <p class="summary">{typeof duration === 'number' ? minutes(duration) : 'No duration yet'}</p>
      <button type="button" class="primary" onClick={() => void confirm()}>Confirm</button>
      <p role="status" class="note">{message}</p>
    </section>
  );
}
