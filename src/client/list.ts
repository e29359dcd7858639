import { STEP_ATTRIBUTE } from '../workflows/definitions';
import { connectClient } from './temporal-client';

export async function listMigrations(json: boolean): Promise<void> {
  const client = await connectClient();
  const rows: { id: string; status: string; started: string; closed?: string; step?: string }[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowType = 'migrationWorkflow'` })) {
    rows.push({
      id: wf.workflowId,
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
    console.log('No migrations.');
    return;
  }
  for (const r of rows) {
    console.log(`${r.id.padEnd(48)} ${r.status.padEnd(11)} ${r.started}  ${r.step ?? ''}`);
  }
}
