import { MIGRATION_WORKFLOW_TYPE, STEP_ATTRIBUTE } from '../workflows/definitions';
import { REHEARSAL_WORKFLOW_TYPE } from '../workflows/rehearsal-definitions';
import { connectClient } from './temporal-client';

const KINDS: Record<string, string> = {
  [MIGRATION_WORKFLOW_TYPE]: 'migration',
  [REHEARSAL_WORKFLOW_TYPE]: 'rehearsal',
};

/** Migrations and rehearsals known to the Temporal server, newest first (the server's order). */
export async function listMigrations(json: boolean): Promise<void> {
  const client = await connectClient();
  const rows: {
    id: string;
    kind: string;
    status: string;
    started: string;
    closed?: string;
    step?: string;
  }[] = [];
  const query = Object.keys(KINDS)
    .map((type) => `WorkflowType = '${type}'`)
    .join(' OR ');
  for await (const wf of client.workflow.list({ query })) {
    rows.push({
      id: wf.workflowId,
      kind: KINDS[wf.type] ?? wf.type,
      status: wf.status.name,
      started: wf.startTime.toISOString(),
      closed: wf.closeTime?.toISOString(),
      step: wf.typedSearchAttributes.get(STEP_ATTRIBUTE),
    });
  }
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  if (rows.length === 0) {
    console.log('No migrations or rehearsals.');
    return;
  }
  for (const r of rows) {
    console.log(
      `${r.id.padEnd(48)} ${r.kind.padEnd(9)} ${r.status.padEnd(11)} ${r.started}  ${r.step ?? ''}`,
    );
  }
}
