/** The few Temporal reads every use case shares. */
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { isTaskWorkflowType } from '../shared/workflow-contracts';

/** The task's workflow, or null when there is none, or when the id names an internal workflow (a gate, a schedule). */
export async function describeTask(client: Client, taskId: string): Promise<WorkflowExecutionDescription | null> {
  try {
    const d = await client.workflow.getHandle(taskId).describe();
    return isTaskWorkflowType(d.type) ? d : null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}
