// Issue 10 §6: dayBounds and serviceDay agree in every IANA zone, DST starting at midnight included
// (the day then starts at 01:00 local). The expected bounds are derived here independently: by
// stepping through time on the 15-minute grid (since 1980 every zone's offsets and transitions sit on
// it) and reading each instant's calendar date with a formatter of our own (en-US parts, not the
// library's en-CA one).
import { describe, expect, it } from 'vitest';
import { dayBounds, serviceDay } from '../../src/core/keys.js';

const Q = 15 * 60_000;
const H = 3_600_000;
const D = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
/** The calendar date of instant `t` in `zone`, YYYY-MM-DD, from en-US parts. */
function localDay(t: number, zone: string): string {
  let f = formatters.get(zone);
  if (!f) formatters.set(zone, (f = new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric' })));
  const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, x.value]));
  return `${p.year!.padStart(4, '0')}-${p.month!.padStart(2, '0')}-${p.day!.padStart(2, '0')}`;
}

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();
/** The zone's UTC offset at `t` in minutes, from the longOffset name ("GMT+05:45"). */
function offsetMinutes(t: number, zone: string): number {
  let f = offsetFormatters.get(zone);
  if (!f) offsetFormatters.set(zone, (f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })));
  const name = f.formatToParts(t).find((x) => x.type === 'timeZoneName')!.value;
  const m = /GMT(?:([+-])(\d{2}):(\d{2}))?/.exec(name)!;
  return m[1] ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

const starts = new Map<string, number>();
/**
 * The first 15-minute grid instant whose local date is `day` or later (local dates never go back):
 * hour by hour from 16 h before midnight read as UTC (offsets lie within -12 h..+14 h), then by
 * quarter hours within the hour that crossed.
 */
function expectedStart(day: string, zone: string): number {
  const key = `${zone} ${day}`;
  const known = starts.get(key);
  if (known !== undefined) return known;
  const midnight = Date.parse(`${day}T00:00:00Z`);
  for (let h = midnight - 16 * H; h <= midnight + 16 * H; h += H) {
    if (localDay(h, zone) < day) continue;
    for (let t = h - H + Q; t <= h; t += Q) {
      if (localDay(t, zone) >= day) {
        starts.set(key, t);
        return t;
      }
    }
  }
  throw new Error(`no start found for ${day} in ${zone}`);
}

const addDays = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * D).toISOString().slice(0, 10);

const FROM = Date.UTC(2022, 0, 1, 12);
const TO = Date.UTC(2025, 0, 1, 12);

/** Days around every offset change of `zone` between FROM and TO (sampled at noon UTC), plus two plain days. */
function daysToCheck(zone: string): string[] {
  const days = new Set<string>(['2023-01-15', '2024-07-15']);
  let prev = offsetMinutes(FROM, zone);
  for (let t = FROM + D; t <= TO; t += D) {
    const off = offsetMinutes(t, zone);
    if (off !== prev) {
      const d = new Date(t).toISOString().slice(0, 10);
      for (let k = -2; k <= 1; k++) days.add(addDays(d, k));
    }
    prev = off;
  }
  return [...days].sort();
}

const ZONES = Intl.supportedValuesOf('timeZone');

describe('dayBounds and serviceDay in every IANA zone (2022-2024, every transition)', () => {
  it('knows the zones', () => {
    expect(ZONES.length).toBeGreaterThan(300);
    expect(ZONES).toEqual(expect.arrayContaining(['America/Santiago', 'America/Asuncion', 'America/Havana', 'Asia/Beirut', 'Europe/Moscow']));
  });

  it('DST starting at midnight: the day starts at 01:00 local', () => {
    // Chile moved its clocks from 00:00 -04 to 01:00 -03 on 2024-09-08: 04:00 UTC.
    expect(dayBounds('2024-09-08', 'America/Santiago').start.toISOString()).toBe('2024-09-08T04:00:00.000Z');
    // Paraguay, 2023-10-01: 00:00 -04 became 01:00 -03.
    expect(dayBounds('2023-10-01', 'America/Asuncion').start.toISOString()).toBe('2023-10-01T04:00:00.000Z');
    // Cuba, 2024-03-10: 00:00 -05 became 01:00 -04.
    expect(dayBounds('2024-03-10', 'America/Havana').start.toISOString()).toBe('2024-03-10T05:00:00.000Z');
    // Lebanon, 2023-03-26 (last Sunday of March, 00:00 +02 became 01:00 +03): 22:00 UTC the day before.
    expect(dayBounds('2023-03-26', 'Asia/Beirut').start.toISOString()).toBe('2023-03-25T22:00:00.000Z');
  });

  it('agree with each other and with the stepped dates, for every zone and every day around a transition', { timeout: 240_000 }, () => {
    const failures: string[] = [];
    let checkedDays = 0;
    for (const zone of ZONES) {
      for (const day of daysToCheck(zone)) {
        checkedDays++;
        const start = expectedStart(day, zone);
        const end = expectedStart(addDays(day, 1), zone);
        const b = dayBounds(day, zone);
        if (b.start.getTime() !== start || b.end.getTime() !== end) {
          failures.push(`${zone} ${day}: got ${b.start.toISOString()}..${b.end.toISOString()}, expected ${new Date(start).toISOString()}..${new Date(end).toISOString()}`);
          continue;
        }
        // Every instant near the bounds (and the bounds' neighbours to the millisecond) is in the day
        // by serviceDay exactly when it is inside [start, end).
        const probes = [start - 1, start, end - 1, end];
        for (let t = start - H; t <= start + H; t += Q) probes.push(t);
        for (let t = end - H; t <= end + H; t += Q) probes.push(t);
        for (const t of probes) {
          const inside = t >= start && t < end;
          if ((serviceDay(new Date(t), zone) === day) !== inside || (localDay(t, zone) === day) !== inside) {
            failures.push(`${zone} ${day}: ${new Date(t).toISOString()} is ${inside ? 'inside' : 'outside'} the bounds, serviceDay says ${serviceDay(new Date(t), zone)}`);
          }
        }
      }
    }
    expect(checkedDays).toBeGreaterThan(ZONES.length * 2);
    expect(failures.slice(0, 20)).toEqual([]);
  });
});
