/**
 * deploy/compose/cluster.yml, checked without a Docker engine (none can pull images here): the compose client's
 * validation where one is installed, and the file's commands, paths, users and healthchecks against the images'
 * layout, written down here with where each fact comes from:
 * - temporalio/server (temporalio/temporal `.github/docker/targets/server.Dockerfile`): Alpine (busybox sh, nc,
 *   hostname), user temporal uid 1000, WORKDIR /etc/temporal, /usr/local/bin/temporal-server,
 *   ENTRYPOINT ["temporal-server", "start"]; no config template or renderer in it, so a config file is mounted.
 *   The flags' environment variables are those of `temporal-server --help` / `start --help` of v1.32.0 (built here):
 *   TEMPORAL_SERVER_CONFIG_FILE_PATH (--config-file), TEMPORAL_ALLOW_NO_AUTH, TEMPORAL_SERVICES (--service).
 *   Config templating: common/config/loader.go, "# enable-template" in the first 1 KB.
 * - temporalio/admin-tools (same repository, `targets/admin-tools.Dockerfile`): temporal, tdbg, temporal-sql-tool in
 *   /usr/local/bin, the repository's schema/ copied to /etc/temporal/schema (copy-schema.sh), user temporal,
 *   ENTRYPOINT ["tini", "--", "sleep", "infinity"]; no node.
 * - postgres:15 (docker-library): POSTGRES_USER/POSTGRES_PASSWORD, pg_isready on PATH, data in /var/lib/postgresql/data.
 * - temporalio/ui: TEMPORAL_ADDRESS and port 8080 (the ui-server's documented defaults; not checked in an image).
 * - prom/prometheus: config at /etc/prometheus/prometheus.yml, rule files relative to it; grafana/grafana:
 *   provisioning under /etc/grafana/provisioning/{dashboards,datasources}. (Their documentation; not checked here.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '../..');
const DIR = path.join(ROOT, 'deploy/compose');
const FILE = path.join(DIR, 'cluster.yml');

interface Mount {
  type: string;
  source: string;
  target: string;
}
interface Service {
  image?: string;
  build?: unknown;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  volumes?: (string | Mount)[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}
const file = () => parse(readFileSync(FILE, 'utf8'), { merge: true }) as { services: Record<string, Service> };
const svc = (name: string): Service => {
  const s = file().services[name];
  if (!s) throw new Error(`cluster.yml has no service ${name}`);
  return s;
};
const mounts = (s: Service): Mount[] => (s.volumes ?? []).filter((v): v is Mount => typeof v !== 'string');
const TEMPORAL = { history: 7234, matching: 7235, frontend: 7233, 'temporal-worker': 7239 } as const;

function composeClient(): string[] | null {
  if (spawnSync('docker', ['compose', 'version']).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version']).status === 0) return ['docker-compose'];
  return null;
}
const client = composeClient();

(client ? test : test.skip)(
  `the compose client accepts cluster.yml (${client?.join(' ') ?? 'SKIPPED: no client'})`,
  () => {
    const run = spawnSync(client![0]!, [...client!.slice(1), '-f', FILE, 'config', '-q'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect({ status: run.status, stderr: run.stderr.trim() }).toEqual({ status: 0, stderr: '' });
  },
);

test('each Temporal service runs the server image’s own entrypoint, with its config and service from the environment', () => {
  const config = readFileSync(path.join(DIR, 'temporal.yaml'), 'utf8');
  expect(config.slice(0, 1024)).toMatch(/^# enable-template/m);
  const parsedConfig = parse(config.replace(/\{\{[^}]*\}\}/g, '0')) as {
    services: Record<string, { rpc: { grpcPort: number } }>;
    dynamicConfigClient: { filepath: string };
  };
  for (const [name, port] of Object.entries(TEMPORAL)) {
    const s = svc(name);
    expect(s.image).toMatch(/^temporalio\/server:/);
    expect(s.entrypoint).toBeUndefined();
    expect(s.command).toBeUndefined(); // the entrypoint is already `temporal-server start`
    const env = s.environment ?? {};
    const service = name === 'temporal-worker' ? 'worker' : name;
    expect(env.TEMPORAL_SERVICES).toBe(service);
    expect(env.TEMPORAL_ALLOW_NO_AUTH).toBe('true');
    const configMount = mounts(s).find((m) => m.target === env.TEMPORAL_SERVER_CONFIG_FILE_PATH);
    expect(configMount && existsSync(path.resolve(DIR, configMount.source))).toBe(true);
    const dyn = mounts(s).find((m) => m.target === parsedConfig.dynamicConfigClient.filepath);
    expect(dyn && existsSync(path.resolve(DIR, dyn.source))).toBe(true);
    // busybox sh, hostname -i and nc exist in the Alpine image; the port is the one the config gives the service.
    expect(parsedConfig.services[service]?.rpc.grpcPort).toBe(port);
    expect(s.healthcheck?.test).toEqual(['CMD-SHELL', `nc -z "$$(hostname -i)" ${port}`]);
  }
  // History first: the others wait for it to be healthy (cluster metadata race).
  for (const name of ['matching', 'frontend']) expect(svc(name).depends_on?.history?.condition).toBe('service_healthy');
});

test('the schema job replaces admin-tools’ sleeping entrypoint and uses its schema paths, which exist in the server module', () => {
  const s = svc('temporal-schema');
  expect(s.image).toMatch(/^temporalio\/admin-tools:/);
  expect(s.entrypoint).toEqual(['/bin/sh', '-c']);
  const script = s.command?.[0] ?? '';
  expect(script).toContain('temporal-sql-tool --plugin postgres12');
  expect(script).toContain('/etc/temporal/schema/postgresql/v12/$$dir/versioned');
  // /etc/temporal/schema is the repository's schema/; where the module cache has v1.32.0, the dirs must be there.
  const mod = path.join(os.homedir(), 'go/pkg/mod/go.temporal.io/server@v1.32.0/schema/postgresql/v12');
  if (existsSync(mod))
    for (const dir of ['temporal', 'visibility']) expect(existsSync(path.join(mod, dir, 'versioned'))).toBe(true);
  expect(svc('postgresql').healthcheck?.test[1]).toBe('pg_isready');
});

test('pubflow setup runs from the app image before any worker or API, after the frontend is healthy', () => {
  const setup = svc('pubflow-setup');
  expect(setup.build).toBeDefined(); // admin-tools has no node
  expect(setup.command?.slice(0, 2)).toEqual(['node', 'lib/setup/run.js']);
  expect(existsSync(path.join(ROOT, 'src/setup/run.ts'))).toBe(true);
  expect(setup.depends_on?.frontend?.condition).toBe('service_healthy');
  for (const name of ['worker', 'api']) {
    const s = svc(name);
    expect(s.depends_on?.['pubflow-setup']?.condition).toBe('service_completed_successfully');
    expect(s.environment?.TEMPORAL_ADDRESS).toBe('frontend:7233');
    const accounts = mounts(s).find((m) => m.target === s.environment?.PUBFLOW_ACCOUNTS_FILE);
    expect(accounts).toBeDefined();
  }
  const api = svc('api');
  expect(mounts(api).some((m) => m.target === api.environment?.PUBFLOW_API_KEYS_FILE)).toBe(true);
});

test('Prometheus and Grafana get files that exist, mounted where the images read them', () => {
  for (const name of ['prometheus', 'grafana'])
    for (const m of mounts(svc(name)).filter((m) => m.type === 'bind' && !m.source.includes('${')))
      expect({ name, source: m.source, exists: existsSync(path.resolve(DIR, m.source)) }).toEqual({
        name,
        source: m.source,
        exists: true,
      });
  const prom = parse(readFileSync(path.join(DIR, 'prometheus.yml'), 'utf8')) as { rule_files: string[] };
  const targets = mounts(svc('prometheus')).map((m) => m.target);
  expect(targets).toContain('/etc/prometheus/prometheus.yml');
  for (const r of prom.rule_files) expect(targets).toContain(path.posix.join('/etc/prometheus', r));
  expect(mounts(svc('grafana')).map((m) => m.target)).toEqual(
    expect.arrayContaining([expect.stringMatching(/^\/etc\/grafana\/provisioning\/dashboards\//)]),
  );
});
