/**
 * Accounts with their login state, and reactivation after a new login.
 *
 * The login state lives in the account's gate workflow (src/workflows/account-gate.ts), the one place that holds the
 * account's queue. The gate mirrors it into its memo, which `describe` returns without a worker having to answer, so
 * listing accounts works even while every worker is down. No gate running means nothing is held: `active`.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import pLimit from 'p-limit';
import type { PublicAccount } from '../platforms/accounts';
import {
  accountGateId,
  GATE_MEMO_KEY,
  reactivateAccountUpdate,
  type AccountStatus,
  type GateMemo,
} from '../shared/definitions';
import { auditOf, logAudit, type Actor } from './audit';
import type { DecisionRecord } from '../shared/types';
import type { ServiceDeps } from './deps';
import { ConflictError, NotFoundError } from './errors';

export interface AccountView extends PublicAccount {
  /** `unknown` when Temporal could not be asked. */
  status: AccountStatus | 'unknown';
  /** Set while the account needs a new login: since when, and the platform's message. */
  needsLogin: { since: string | null; reason: string | null } | null;
  /** Who reactivated it last, and when (the audit trail); null if nobody has since its gate started. */
  lastReactivation: DecisionRecord | null;
}

/** Describes at most this many gates at once. */
const DESCRIBE_CONCURRENCY = 16;

export function createAccountService(deps: ServiceDeps) {
  const { client, accounts, config, log } = deps;
  const gate = (accountId: string) => client.workflow.getHandle(accountGateId(accountId, config.temporal.taskQueue));

  async function statusOf(accountId: string): Promise<Pick<AccountView, 'status' | 'needsLogin' | 'lastReactivation'>> {
    try {
      const d = await gate(accountId).describe();
      const memo = d.memo?.[GATE_MEMO_KEY] as GateMemo | undefined;
      const lastReactivation = memo?.lastReactivation ?? null;
      if (d.status.name !== 'RUNNING' || memo?.status !== 'needs_login')
        return { status: 'active', needsLogin: null, lastReactivation };
      return { status: 'needs_login', needsLogin: { since: memo.since, reason: memo.reason }, lastReactivation };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { status: 'active', needsLogin: null, lastReactivation: null };
      return { status: 'unknown', needsLogin: null, lastReactivation: null };
    }
  }

  return {
    async listAccounts(): Promise<AccountView[]> {
      const limit = pLimit(DESCRIBE_CONCURRENCY);
      return Promise.all(accounts.list().map((a) => limit(async () => ({ ...a, ...(await statusOf(a.id)) }))));
    },

    /** Releases an account that needed a login: its queued tasks get their turns again. */
    async reactivate(
      accountId: string,
      by: Actor,
      note?: string,
    ): Promise<{ accountId: string; status: AccountStatus; waiting: number }> {
      if (!accounts.has(accountId)) throw new NotFoundError(`account ${accountId}`);
      const audit = auditOf(by, note);
      try {
        const out = await gate(accountId).executeUpdate(reactivateAccountUpdate, { args: [audit] });
        logAudit(log, 'reactivate', { accountId }, audit);
        return { accountId, status: out.status, waiting: out.waiting };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError)
          throw new ConflictError(
            'not_needing_login',
            err.cause?.message ?? `account ${accountId} does not need a login`,
          );
        // No gate: nothing is held on the account.
        if (err instanceof WorkflowNotFoundError)
          throw new ConflictError('not_needing_login', `account ${accountId} does not need a login (status active)`);
        throw err;
      }
    },
  };
}
