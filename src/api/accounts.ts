/** Account routes: the accounts with their login state, and reactivation after a new login. */
import type { Router } from 'express';
import type { PubflowService } from '../service';
import { principalOf, requireRole as role } from './auth';
import { parse } from './errors';
import { AccountIdParam, NoteBody } from './schemas';

export function registerAccountRoutes(api: Router, service: PubflowService): void {
  api.get('/accounts', role('viewer'), async (_req, res) => {
    res.json({ items: await service.listAccounts() });
  });

  api.post('/accounts/:id/reactivate', role('operator'), async (req, res) => {
    const id = parse(AccountIdParam, req.params.id, 'id');
    const { note } = parse(NoteBody, req.body ?? {}, 'body');
    res.json(await service.reactivate(id, principalOf(req), note));
  });
}
