// ISO weeks in an IANA time zone, with Intl only: a week runs from Monday 00:00 to the next
// Monday 00:00 local time (167, 168 or 169 hours across a daylight-saving change), and week 1 is
// the week with the year's first Thursday.

export interface IsoWeek {
  /** "2026-W47" */
  label: string;
  year: number;
  week: number;
  timeZone: string;
  /** Monday 00:00 local time, as an instant. */
  start: Date;
  /** The next Monday 00:00 local time (exclusive). */
  end: Date;
  /** The local dates of Monday and Sunday, e.g. 2026-11-16 and 2026-11-22. */
  firstDay: string;
  lastDay: string;
}

export class WeekError extends Error {}

const WEEK_LABEL = /^(\d{4})-W(\d{2})$/;

/** The zone's wall-clock fields at an instant. */
function wallClock(at: Date, timeZone: string): { y: number; m: number; d: number; h: number; min: number; s: number } {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(at);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return { y: get("year"), m: get("month"), d: get("day"), h: get("hour"), min: get("minute"), s: get("second") };
}

/** The zone's offset from UTC at an instant, in milliseconds. */
function offsetAt(at: Date, timeZone: string): number {
  const w = wallClock(at, timeZone);
  return Date.UTC(w.y, w.m - 1, w.d, w.h, w.min, w.s) - Math.floor(at.getTime() / 1000) * 1000;
}

/** The instant of local midnight starting a date (y, m, d) in the zone. */
export function localMidnight(y: number, m: number, d: number, timeZone: string): Date {
  const asUtc = Date.UTC(y, m - 1, d);
  // Two rounds settle the offset, also when midnight sits next to a daylight-saving change.
  let t = asUtc - offsetAt(new Date(asUtc), timeZone);
  t = asUtc - offsetAt(new Date(t), timeZone);
  return new Date(t);
}

function isoDate(y: number, m: number, d: number): string {
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

/** Monday of ISO week 1 of `year`, as a UTC calendar date (milliseconds). */
function mondayOfWeek1(year: number): number {
  const jan4 = Date.UTC(year, 0, 4);
  const dow = (new Date(jan4).getUTCDay() + 6) % 7; // Monday 0
  return jan4 - dow * 86_400_000;
}

function weeksInYear(year: number): number {
  return (mondayOfWeek1(year + 1) - mondayOfWeek1(year)) / (7 * 86_400_000);
}

/** Parses "2026-W47" into the week's bounds in the zone. */
export function parseIsoWeek(label: string, timeZone: string): IsoWeek {
  const m = WEEK_LABEL.exec(label.trim());
  if (!m) throw new WeekError(`'${label}' is not an ISO week: write it as YYYY-Www, e.g. 2026-W47`);
  const year = Number(m[1]);
  const week = Number(m[2]);
  if (week < 1 || week > weeksInYear(year)) throw new WeekError(`${year} has weeks 01 to ${weeksInYear(year)}: '${label}' is not one of them`);
  const monday = new Date(mondayOfWeek1(year) + (week - 1) * 7 * 86_400_000);
  const sunday = new Date(monday.getTime() + 6 * 86_400_000);
  const next = new Date(monday.getTime() + 7 * 86_400_000);
  return {
    label: `${year}-W${String(week).padStart(2, "0")}`,
    year,
    week,
    timeZone,
    start: localMidnight(monday.getUTCFullYear(), monday.getUTCMonth() + 1, monday.getUTCDate(), timeZone),
    end: localMidnight(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), timeZone),
    firstDay: isoDate(monday.getUTCFullYear(), monday.getUTCMonth() + 1, monday.getUTCDate()),
    lastDay: isoDate(sunday.getUTCFullYear(), sunday.getUTCMonth() + 1, sunday.getUTCDate()),
  };
}

/** The ISO week containing an instant, in the zone. */
export function weekContaining(at: Date, timeZone: string): IsoWeek {
  const w = wallClock(at, timeZone);
  const day = Date.UTC(w.y, w.m - 1, w.d);
  const dow = (new Date(day).getUTCDay() + 6) % 7;
  const thursday = new Date(day + (3 - dow) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = 1 + Math.round((day - dow * 86_400_000 - mondayOfWeek1(year)) / (7 * 86_400_000));
  return parseIsoWeek(`${year}-W${String(week).padStart(2, "0")}`, timeZone);
}

/** The last week that ended at or before an instant (the default for `countersign digest`). */
export function lastCompleteWeek(at: Date, timeZone: string): IsoWeek {
  const current = weekContaining(at, timeZone);
  return weekContaining(new Date(current.start.getTime() - 1), timeZone);
}

/** "2026-11-16 00:00 Europe/Paris" style local time of an instant. */
export function localTime(at: Date, timeZone: string): string {
  const w = wallClock(at, timeZone);
  return `${isoDate(w.y, w.m, w.d)} ${String(w.h).padStart(2, "0")}:${String(w.min).padStart(2, "0")}`;
}
