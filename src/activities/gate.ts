/**
 * The activities of the queue gates (src/workflows/account-gate.ts): put a task's request in a gate's queue,
 * starting the gate if it is not running; and (protocol 3) send the signals between tasks, gates and batches.
 *
 * Why an activity: a workflow cannot signal-with-start another workflow, and starting the gate as a child would tie
 * it to whichever task happened to come first (its close would be reported to a long-closed parent). Signal-with-start
 * is atomic on the server: two workers racing for a new gate both end up signalling the same run. It is also where
 * the account's own `settings.rateLimits` are applied over the platform defaults carried in the task's policy, from
 * the same accounts file the worker resolves credentials from; the activity's input is recorded in the task's
 * history and the request in the gate's, so replays see the same limits.
 */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AccountRegistry } from '../platforms/accounts';
import {
  gateRequestSignal,
  type EnqueueAtGateInput,
  type GateActivities,
  type GateRequest,
  type SignalWorkflowInput,
} from '../shared/definitions';
import { withAccountLimits } from '../shared/policy';
import type { Logger } from '../log';
import { GATE_PROTOCOL, WORKFLOW_TYPES } from '../shared/workflow-contracts';

export interface GateDeps {
  accounts: AccountRegistry;
  log: Logger;
  /** The worker's client; defaults to the one the worker gives each activity. */
  client?: Client;
}

export function createGateActivities(deps: GateDeps): GateActivities {
  return {
    async enqueueAtGate({ kind, key, gateId, taskQueue, request }: EnqueueAtGateInput): Promise<void> {
      const client = deps.client ?? Context.current().client;
      const queued: GateRequest = kind === 'account' ? withAccountSettings(request, deps.accounts, key) : request;
      try {
        await client.workflow.signalWithStart(
          kind === 'account' ? WORKFLOW_TYPES.accountGate : WORKFLOW_TYPES.platformGate,
          {
            workflowId: gateId,
            taskQueue,
            // Only a new gate reads these; a running one keeps its own protocol.
            args: [{ kind, key, protocol: GATE_PROTOCOL }],
            signal: gateRequestSignal,
            signalArgs: [queued],
            // The gates' own workflow tasks go first: every waiting task depends on them.
            priority: { priorityKey: 1 },
          },
        );
      } catch (err) {
        // A server where signal-with-start is not atomic (the time-skipping test server) lets a concurrent start win:
        // the gate is running now, so a plain signal reaches it.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        await client.workflow.getHandle(gateId).signal(gateRequestSignal, queued);
      }
    },

    async signalWorkflow({ workflowId, runId, signal, arg }: SignalWorkflowInput): Promise<boolean> {
      const client = deps.client ?? Context.current().client;
      try {
        await client.workflow.getHandle(workflowId, runId).signal(signal, arg);
        return true;
      } catch (err) {
        // Closed, or never started: the same answer a workflow's external signal gets. Anything else (the server
        // unreachable) is retried by the local activity's policy.
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
  };
}

function withAccountSettings(request: GateRequest, accounts: AccountRegistry, accountId: string): GateRequest {
  const limits = withAccountLimits(
    {
      ...(request.minIntervalMs !== undefined ? { minIntervalMs: request.minIntervalMs } : {}),
      ...(request.maxPerWindow ? { maxPerWindow: request.maxPerWindow } : {}),
    },
    accounts.rateLimits(accountId),
  );
  const { minIntervalMs: _m, maxPerWindow: _w, ...rest } = request;
  return { ...rest, ...limits };
}
