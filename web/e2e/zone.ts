// The tests' time zone: Berlin, unless it is night there (22:00–04:00), when an entry logged
// "45 min" ago or a clock moved two hours on would cross midnight and land on another day
// than the one the test looks at; then New York, where it is afternoon or evening.
const hourIn = (zone: string) =>
  Number(new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: 'numeric', hourCycle: 'h23' }).format(new Date()));

export const ZONE = hourIn('Europe/Berlin') >= 22 || hourIn('Europe/Berlin') < 4 ? 'America/New_York' : 'Europe/Berlin';
