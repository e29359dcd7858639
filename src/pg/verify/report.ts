import type {
  DatabaseReport,
  SequenceReport,
  TableReport,
  VerificationReport,
} from '../../activities/contract';

// The report is stored in Temporal's history (as the activity's result, or a failure's details), where a
// payload of megabytes is refused: everything that grows with the number of objects is capped here, and
// the counts say how much more there was.
export const MAX_MISMATCHES = 200;
/** A line about one object that differs in many ways (a table with hundreds of columns) is cut there. */
export const MAX_LINE = 1000;
export const MAX_NOTES = 50;
/** Table and sequence lines kept per report (mismatching ones first); the rest are only counted. */
export const MAX_DETAIL_LINES = 500;

/** Classes whose mismatches are data (what writers change), as opposed to objects and properties. */
export const DATA_CLASSES = [
  'table contents',
  'materialized view contents',
  'sequence values',
  'large objects',
] as const;

/** Collects a verification's findings, capped, with per-class counts. */
export class ReportBuilder {
  readonly report: VerificationReport = {
    ok: true,
    databases: [],
    tablesCompared: 0,
    rowsVerified: 0,
    sequencesCompared: 0,
    mismatches: [],
    mismatchCount: 0,
    classes: {},
    skipped: [],
    notes: [],
  };
  private detailLines = 0;

  /** Counts one object of a class as compared, and as mismatched when `problem` is given. */
  compared(cls: string, problem?: string): void {
    const counts = (this.report.classes![cls] ??= { compared: 0, mismatched: 0 });
    counts.compared++;
    if (problem === undefined) return;
    counts.mismatched++;
    this.mismatch(problem);
  }

  /** Counts `n` objects of a class as compared and alike. */
  comparedAlike(cls: string, n: number): void {
    (this.report.classes![cls] ??= { compared: 0, mismatched: 0 }).compared += n;
  }

  /** Counts a mismatched object without a line of its own (a summary line says how many there were). */
  countMismatch(cls: string): void {
    const counts = (this.report.classes![cls] ??= { compared: 0, mismatched: 0 });
    counts.compared++;
    counts.mismatched++;
  }

  mismatch(text: string): void {
    this.report.ok = false;
    this.report.mismatchCount!++;
    if (this.report.mismatches.length < MAX_MISMATCHES) this.report.mismatches.push(cut(text));
  }

  note(text: string): void {
    const notes = this.report.notes!;
    if (notes.length < MAX_NOTES) notes.push(cut(text));
    else if (notes.length === MAX_NOTES) notes.push('... further notes left out');
  }

  /** Adds a database's lines, keeping mismatching ones first while the report has room. */
  addDatabase(db: DatabaseReport & { tables: TableReport[]; sequences: SequenceReport[] }): void {
    const all = db.tables.length + db.sequences.length;
    const keep = <T extends { match: boolean }>(items: T[]): T[] => {
      const ordered = [...items.filter((i) => !i.match), ...items.filter((i) => i.match)];
      const room = Math.max(0, MAX_DETAIL_LINES - this.detailLines);
      const kept = ordered.length <= room ? items : ordered.slice(0, room);
      this.detailLines += kept.length;
      return kept;
    };
    const tables = keep(db.tables);
    const sequences = keep(db.sequences);
    const entry: DatabaseReport = { ...db, tables, sequences };
    const omitted = all - tables.length - sequences.length;
    if (omitted > 0) entry.omitted = omitted;
    this.report.databases.push(entry);
  }
}

function cut(text: string): string {
  return text.length <= MAX_LINE
    ? text
    : `${text.slice(0, MAX_LINE)}... (${text.length - MAX_LINE} more characters)`;
}

/** How a database is named in a message: as it is when plain, quoted (escapes shown) otherwise. */
export function dbLabel(name: string): string {
  return /^[A-Za-z0-9_]+$/.test(name) ? name : JSON.stringify(name);
}
