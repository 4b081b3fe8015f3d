// Durations, days and times as people read them.
import type { Row } from './local';

/** `105` → "1h 45m"; `20` → "20m". */
export function minutes(total: number): string {
  const m = Math.round(total);
  const h = Math.floor(m / 60);
  const rest = m % 60;
  if (h === 0) return `${rest}m`;
  return rest === 0 ? `${h}h` : `${h}h ${rest}m`;
}

/** Seconds as "1:02:03". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** A log's length in minutes: its duration, else its span, else (running) up to `now`. */
export function entryMinutes(log: Row, now = Date.now()): number {
  if (typeof log.duration_minutes === 'number') return log.duration_minutes;
  const start = log.started_at ? Date.parse(log.started_at as string) : NaN;
  if (Number.isNaN(start)) return 0;
  const end = log.ended_at ? Date.parse(log.ended_at as string) : now;
  return Math.max(0, (end - start) / 60_000);
}

/** A log's length in seconds (timers are shown to the second). */
export function entrySeconds(log: Row, now = Date.now()): number {
  const start = log.started_at ? Date.parse(log.started_at as string) : NaN;
  if (!Number.isNaN(start) && (log.ended_at || log.source === 'timer')) {
    const end = log.ended_at ? Date.parse(log.ended_at as string) : now;
    return Math.max(0, (end - start) / 1000);
  }
  return entryMinutes(log, now) * 60;
}

/** Whether a log is a running timer. */
export const running = (log: Row) => log.source === 'timer' && !!log.started_at && !log.ended_at;

/** The local day (YYYY-MM-DD) a log belongs to: its start, else its end, else when written. */
export function dayOf(log: Row): string {
  const at = (log.started_at ?? log.ended_at ?? log.created_at ?? new Date().toISOString()) as string;
  return localDay(new Date(at));
}

/** `date`'s local day as YYYY-MM-DD. */
export function localDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The Monday of the week holding `date`. */
export function monday(date: Date): Date {
  const d = new Date(date.getFullYear(), date.getMonth(), date.getDate());
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  return d;
}

/** `date` plus `days`. */
export function addDays(date: Date, days: number): Date {
  const d = new Date(date);
  d.setDate(d.getDate() + days);
  return d;
}

/** "Mon 7 Dec". */
export function dayLabel(day: string): string {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y, m - 1, d).toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' });
}

/** "09:30". */
export function time(iso: unknown): string {
  if (typeof iso !== 'string') return '';
  return new Date(iso).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
}
