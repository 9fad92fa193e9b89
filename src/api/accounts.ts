/**
 * Account routes: the accounts with their login state, and reactivation after a new login.
 *
 * The login state lives in the account's gate workflow (src/workflows/account-gate.ts), the one place that holds the
 * account's queue. The gate mirrors it into its memo, which `describe` returns without a worker having to answer, so
 * listing accounts works even while every worker is down. No gate running means nothing is held: `active`.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Router } from 'express';
import type { Config } from '../config';
import type { AccountRegistry, PublicAccount } from '../platforms/accounts';
import {
  accountGateId,
  GATE_MEMO_KEY,
  reactivateAccountUpdate,
  type AccountStatus,
  type GateMemo,
} from '../shared/definitions';
import { conflict, fromZod, notFound } from './errors';
import { AccountIdParam } from './schemas';

export interface AccountRoutesContext {
  client: Client;
  accounts: AccountRegistry;
  /** The task queue names the gates (`account-gate-<id>`, plus `@<queue>` outside the default queue). */
  config: { temporal: Pick<Config['temporal'], 'taskQueue'> };
}

export interface AccountView extends PublicAccount {
  /** `unknown` when Temporal could not be asked. */
  status: AccountStatus | 'unknown';
  /** Set while the account needs a new login: since when, and the platform's message. */
  needsLogin: { since: string | null; reason: string | null } | null;
}

/** Describes at most this many gates at once. */
const DESCRIBE_CONCURRENCY = 16;

export function registerAccountRoutes(api: Router, ctx: AccountRoutesContext): void {
  const { client, accounts, config } = ctx;
  const gate = (accountId: string) => client.workflow.getHandle(accountGateId(accountId, config.temporal.taskQueue));

  async function statusOf(accountId: string): Promise<Pick<AccountView, 'status' | 'needsLogin'>> {
    try {
      const d = await gate(accountId).describe();
      const memo = d.memo?.[GATE_MEMO_KEY] as GateMemo | undefined;
      if (d.status.name !== 'RUNNING' || memo?.status !== 'needs_login') return { status: 'active', needsLogin: null };
      return { status: 'needs_login', needsLogin: { since: memo.since, reason: memo.reason } };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { status: 'active', needsLogin: null };
      return { status: 'unknown', needsLogin: null };
    }
  }

  api.get('/accounts', async (_req, res) => {
    const list = accounts.list();
    const items: AccountView[] = new Array(list.length);
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < list.length; i = next++) items[i] = { ...list[i]!, ...(await statusOf(list[i]!.id)) };
    };
    await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, list.length) }, lane));
    res.json({ items });
  });

  api.post('/accounts/:id/reactivate', async (req, res) => {
    const parsed = AccountIdParam.safeParse(req.params.id);
    if (!parsed.success) throw fromZod('id', parsed.error);
    const id = parsed.data;
    if (!accounts.has(id)) throw notFound(`account ${id}`);
    try {
      const out = await gate(id).executeUpdate(reactivateAccountUpdate, { args: [] });
      res.json({ accountId: id, status: out.status, waiting: out.waiting });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError)
        throw conflict('not_needing_login', err.cause?.message ?? `account ${id} does not need a login`);
      // No gate: nothing is held on the account.
      if (err instanceof WorkflowNotFoundError)
        throw conflict('not_needing_login', `account ${id} does not need a login (status active)`);
      throw err;
    }
  });
}
