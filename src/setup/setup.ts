/**
 * `pubflow setup`: makes a Temporal (dev server, self-hosted cluster or Temporal Cloud) ready for pubflow, and says
 * what it changed. Idempotent: a second run finds everything in place and changes nothing.
 *   - the namespace: registered with the retention when missing; its retention updated when it differs;
 *   - pubflow's search attributes (src/shared/search-attributes.ts): added when missing; one that exists with
 *     another type is an error (Temporal cannot change a search attribute's type).
 * On Temporal Cloud the namespace and search attributes are managed in the Cloud (tcld / web UI / Terraform):
 * an API key usually may not register namespaces, so `--check` reports what is missing without changing anything.
 */
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import { msNumberToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../shared/search-attributes';

const IndexedValueType = temporal.api.enums.v1.IndexedValueType;

const GRPC_NOT_FOUND = 5;
const GRPC_UNAVAILABLE = 14;

export interface SetupOptions {
  namespace: string;
  /** Workflow execution retention, in milliseconds (a whole number of seconds; Temporal's minimum is 1 day). */
  retentionMs: number;
  /** Report only: change nothing, list what would change. */
  checkOnly?: boolean;
  /** How long to keep trying while a fresh namespace or search attribute reaches every service (default 120 s). */
  settleTimeoutMs?: number;
  /** Progress lines (waiting for …); the result is returned, not printed. */
  onProgress?: (line: string) => void;
}

export type Change =
  | { what: 'namespace'; action: 'created'; namespace: string; retentionMs: number }
  | { what: 'retention'; action: 'updated'; namespace: string; fromMs: number; toMs: number }
  | { what: 'search-attribute'; action: 'added'; name: string; type: string };

export interface SetupReport {
  namespace: string;
  retentionMs: number;
  /** Empty: nothing needed changing (or, with checkOnly, nothing would). */
  changes: Change[];
  /** Search attributes that were already there with the right type. */
  searchAttributesPresent: string[];
  /** checkOnly: the changes were not made. */
  checkOnly: boolean;
}

export class SetupError extends Error {
  override readonly name = 'SetupError';
}

const typeName = (t: number): string => (IndexedValueType[t] ?? String(t)).replace('INDEXED_VALUE_TYPE_', '');
const typeValue = (name: string): number => {
  const v = (IndexedValueType as unknown as Record<string, number>)[`INDEXED_VALUE_TYPE_${name.toUpperCase()}`];
  if (v === undefined) throw new SetupError(`unknown search attribute type ${name}`);
  return v;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Retries `fn` while the cluster says the namespace is not there yet (a namespace registered a moment ago reaches
 * each frontend's and history's cache within ~10 s) or a service is briefly unavailable.
 */
async function settle<T>(what: string, fn: () => Promise<T>, opts: SetupOptions): Promise<T> {
  const deadline = Date.now() + (opts.settleTimeoutMs ?? 120_000);
  let delay = 250;
  let said = false;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const retriable = isGrpcServiceError(err) && (err.code === GRPC_NOT_FOUND || err.code === GRPC_UNAVAILABLE);
      if (!retriable || Date.now() + delay > deadline) throw err;
      if (!said) opts.onProgress?.(`waiting for ${what} (${(err as Error).message})`);
      said = true;
      await sleep(delay);
      delay = Math.min(delay * 2, 3000);
    }
  }
}

async function describeRetentionMs(connection: Connection, namespace: string): Promise<number | null> {
  try {
    const res = await connection.workflowService.describeNamespace({ namespace });
    const ttl = res.config?.workflowExecutionRetentionTtl;
    return ttl ? Number(ttl.seconds ?? 0) * 1000 + Math.round((ttl.nanos ?? 0) / 1e6) : 0;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND) return null;
    throw err;
  }
}

// msNumberToTs: the SDK's own ms → google.protobuf.Duration (seconds as a Long).
const retentionTtl = (ms: number) => msNumberToTs(Math.round(ms / 1000) * 1000);

export async function setupTemporal(connection: Connection, opts: SetupOptions): Promise<SetupReport> {
  const { namespace, retentionMs } = opts;
  if (!Number.isFinite(retentionMs) || retentionMs < 86_400_000)
    throw new SetupError(`retention must be at least 1 day (Temporal's minimum), got ${retentionMs} ms`);
  const changes: Change[] = [];
  const checkOnly = opts.checkOnly ?? false;

  // --- the namespace and its retention
  const current = await describeRetentionMs(connection, namespace);
  if (current === null) {
    changes.push({ what: 'namespace', action: 'created', namespace, retentionMs });
    if (!checkOnly) {
      try {
        await connection.workflowService.registerNamespace({
          namespace,
          workflowExecutionRetentionPeriod: retentionTtl(retentionMs),
          description: 'pubflow',
        });
      } catch (err) {
        // Another `setup` (a second worker host) registered it between our describe and register: that is fine.
        if (!(isGrpcServiceError(err) && /already exists|AlreadyExists/i.test(err.message))) throw err;
        changes.pop();
      }
    }
  } else if (Math.round(current / 1000) !== Math.round(retentionMs / 1000)) {
    changes.push({ what: 'retention', action: 'updated', namespace, fromMs: current, toMs: retentionMs });
    if (!checkOnly)
      // Only the retention is sent; the server leaves the other config fields as they are.
      await connection.workflowService.updateNamespace({
        namespace,
        config: { workflowExecutionRetentionTtl: retentionTtl(retentionMs) },
      });
  }

  // --- search attributes (a namespace that does not exist yet has none)
  const wanted = Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) => ({ name, type, value: typeValue(type) }));
  let existing: Record<string, number> = {};
  if (!(checkOnly && current === null)) {
    const listed = await settle(
      `namespace ${namespace}`,
      () => connection.operatorService.listSearchAttributes({ namespace }),
      opts,
    );
    existing = { ...(listed.systemAttributes ?? {}), ...(listed.customAttributes ?? {}) } as Record<string, number>;
  }
  const present: string[] = [];
  const missing: typeof wanted = [];
  for (const w of wanted) {
    const have = existing[w.name];
    if (have === undefined) missing.push(w);
    else if (have !== w.value)
      throw new SetupError(
        `search attribute ${w.name} exists in namespace ${namespace} as ${typeName(have)}, pubflow needs ${w.type}; ` +
          'Temporal cannot change its type: remove it (temporal operator search-attribute remove) or use another namespace',
      );
    else present.push(w.name);
  }
  for (const m of missing) changes.push({ what: 'search-attribute', action: 'added', name: m.name, type: m.type });
  if (!checkOnly && missing.length > 0) {
    await settle(
      `namespace ${namespace}`,
      () =>
        connection.operatorService.addSearchAttributes({
          namespace,
          searchAttributes: Object.fromEntries(missing.map((m) => [m.name, m.value])),
        }),
      opts,
    );
    // Adding is asynchronous on a cluster (a system workflow); wait until every one is listed.
    const deadline = Date.now() + (opts.settleTimeoutMs ?? 120_000);
    for (;;) {
      const listed = await connection.operatorService.listSearchAttributes({ namespace });
      const custom = (listed.customAttributes ?? {}) as Record<string, number>;
      if (missing.every((m) => custom[m.name] === m.value)) break;
      if (Date.now() > deadline)
        throw new SetupError(`search attributes ${missing.map((m) => m.name).join(', ')} were not listed in time`);
      await sleep(500);
    }
  }
  if (!checkOnly && changes.some((c) => c.what === 'namespace')) {
    // A fresh namespace is usable once the frontend that answers can list in it (its namespace cache has it).
    await settle(
      `namespace ${namespace} to be usable`,
      () => connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1 }),
      opts,
    );
  }
  return { namespace, retentionMs, changes, searchAttributesPresent: present, checkOnly };
}

const days = (ms: number) => {
  const h = ms / 3_600_000;
  return h % 24 === 0 ? `${h / 24}d` : `${h}h`;
};

/** The lines `pubflow setup` prints. */
export function describeReport(r: SetupReport, target: string): string[] {
  const verb = r.checkOnly ? 'would be ' : '';
  const lines = r.changes.map((c) => {
    switch (c.what) {
      case 'namespace':
        return `namespace ${c.namespace}: ${verb}created (retention ${days(c.retentionMs)})`;
      case 'retention':
        return `namespace ${c.namespace}: retention ${verb}changed from ${days(c.fromMs)} to ${days(c.toMs)}`;
      case 'search-attribute':
        return `search attribute ${c.name} (${c.type}): ${verb}added`;
    }
  });
  if (r.changes.length === 0)
    lines.push(
      `nothing to change: namespace ${r.namespace} (retention ${days(r.retentionMs)}) and ` +
        `${r.searchAttributesPresent.length} search attributes are in place`,
    );
  else if (r.searchAttributesPresent.length > 0)
    lines.push(`already in place: ${r.searchAttributesPresent.join(', ')}`);
  return [`Temporal ${target}`, ...lines];
}
