/** Account routes: the accounts with their login state, and reactivation after a new login. */
import type { Router } from 'express';
import type { PubflowService } from '../service';
import { parse } from './errors';
import { AccountIdParam } from './schemas';

export function registerAccountRoutes(api: Router, service: PubflowService): void {
  api.get('/accounts', async (_req, res) => {
    res.json({ items: await service.listAccounts() });
  });

  api.post('/accounts/:id/reactivate', async (req, res) => {
    res.json(await service.reactivate(parse(AccountIdParam, req.params.id, 'id')));
  });
}
