/**
 * Signals between pubflow's own workflows: a task's request and release at its gate, the gate's grants, stages and
 * liveness checks, a batch child's reports to its batch.
 *
 * Protocol 3 (issue 14) sends a task's release and a gate's grants, stages and liveness checks from a local activity
 * through the worker's client instead of the workflow's external-signal command; protocol 5 sends a batch child's
 * reports to its batch that way too (Projector.reportToParent). Temporal records a signal command as two events in the sender's history (initiated,
 * then signalled) and schedules a further workflow task of the sender's just to deliver the second: five events and
 * a round of server and worker work per signal, a quarter of an uncontended publish's cost. A local activity is one
 * marker in the workflow task that sent it.
 *
 * What it changes: the signal leaves before the sending workflow task completes. Should that task be lost (its worker
 * dies), the replay sends it again: every receiver already takes a repeated grant, release, stage or report (tickets
 * and versions deduplicate them), and a gate that meets a release before its own lost grant is told that the turn was
 * used (`GateRelease.held`). Runs without protocol 3 keep the commands, so their histories replay unchanged.
 */
import type { SignalDefinition } from '@temporalio/common';
import { getExternalWorkflowHandle, proxyLocalActivities } from '@temporalio/workflow';
import type { GateActivities } from '../shared/definitions';

/** The protocol from which signals go by local activity. */
export const LOCAL_SIGNALS_PROTOCOL = 3;

/** The protocol from which a batch child's reports to its batch go by local activity too (Projector.reportToParent). */
export const LOCAL_REPORTS_PROTOCOL = 5;

// Retried until the server answers: a lost grant or release would stall an account. A closed receiver is an answer
// (false), not a failure.
const { signalWorkflow } = proxyLocalActivities<GateActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Sends `signal` to a workflow (a specific run when `runId` is given); false when it is not open. */
export async function signalRun<T>(
  protocol: number | undefined,
  to: { workflowId: string; runId?: string },
  signal: SignalDefinition<[T]>,
  arg: T,
): Promise<boolean> {
  if ((protocol ?? 1) >= LOCAL_SIGNALS_PROTOCOL)
    return signalWorkflow({ workflowId: to.workflowId, runId: to.runId, signal: signal.name, arg });
  try {
    await getExternalWorkflowHandle(to.workflowId, to.runId).signal(signal, arg);
    return true;
  } catch {
    return false;
  }
}
