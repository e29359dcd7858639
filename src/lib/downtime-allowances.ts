// Scaling services and setting their configuration are part of a migration's downtime, but a rehearsal
// cannot time them: it would have to touch production, which it never does. So its estimate counts an
// allowance per operation instead, per platform, from experience rather than measurement: locally a scale
// or a config change is a process restart (a second or two); on Aptible `apps:scale` waits for containers to
// stop or start and `config:set` restarts the whole app, each typically a minute or two.
// Pure: the rehearsal workflow imports it.

export interface DowntimeAllowances {
  /** Per service scaled (once down, once up). */
  scaleServiceMs: number;
  /** Per app whose configuration is set (one `config:set` per app, whatever the number of variables). */
  configSetMs: number;
}

const ALLOWANCES: Record<string, DowntimeAllowances> = {
  local: { scaleServiceMs: 2_000, configSetMs: 2_000 },
  aptible: { scaleServiceMs: 60_000, configSetMs: 120_000 },
};

/** A platform without its own figures gets Aptible's: an estimate should err on the long side. */
export function allowancesFor(platform: string): DowntimeAllowances {
  return ALLOWANCES[platform] ?? ALLOWANCES.aptible;
}
