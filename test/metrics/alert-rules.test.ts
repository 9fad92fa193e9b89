/**
 * The alert rules in deploy/prometheus/ (issue 13 §2): promtool accepts them and the config, their unit tests pass,
 * every rule has a case where it fires and one where it stays quiet, and those cases really test the rule: with the
 * rule's expression made to never fire, or to always fire, promtool's tests fail.
 */
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { tempDir } from '../helpers/servers';
import { describeWithPromtool, PROMETHEUS_DIR, runPromtool } from './promtool';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
interface RulesFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}
interface TestsFile {
  rule_files: string[];
  tests: Array<{
    name: string;
    alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }>;
  }>;
}

const RULES = 'alerts.yml';
const TESTS = 'alerts.test.yml';
const rules = YAML.parse(readFileSync(path.join(PROMETHEUS_DIR, RULES), 'utf8')) as RulesFile;
const tests = YAML.parse(readFileSync(path.join(PROMETHEUS_DIR, TESTS), 'utf8')) as TestsFile;
const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert).filter((a): a is string => !!a));

test("the issue's six alerts are there (and the API being down)", () => {
  expect(alerts.sort()).toEqual(
    [
      'PubflowAccountNeedsLogin',
      'PubflowApiDown',
      'PubflowEventDeliveriesFailing',
      'PubflowEventDeliveriesGivenUp',
      'PubflowProjectionWritesFailing',
      'PubflowPublishFailureRateHigh',
      'PubflowReviewTooOld',
      'PubflowTasksPendingNoWorker',
      'PubflowWorkerDown',
    ].sort(),
  );
});

test('every alert has a promtool case where it fires and one where it stays quiet, and no case names another', () => {
  const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
  const coverage = alerts.map((alert) => {
    const mine = cases.filter((c) => c.alertname === alert);
    return {
      alert,
      fires: mine.some((c) => (c.exp_alerts ?? []).length > 0),
      quiet: mine.some((c) => (c.exp_alerts ?? []).length === 0),
    };
  });
  expect(coverage).toEqual(alerts.map((alert) => ({ alert, fires: true, quiet: true })));
  expect(cases.map((c) => c.alertname).filter((a) => !alerts.includes(a))).toEqual([]);
  expect(tests.rule_files).toEqual([RULES]);
});

describeWithPromtool('promtool', (promtool) => {
  test('check rules and check config accept the files', async () => {
    const checked = await runPromtool(promtool(), ['check', 'rules', RULES]);
    expect(checked).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${alerts.length} rules found`) });
    // --syntax-only: the token file it names is written by `make up`.
    const config = await runPromtool(promtool(), ['check', 'config', '--syntax-only', 'prometheus.yml']);
    expect(config).toEqual({ code: 0, out: expect.stringContaining('SUCCESS') });
  });

  test("the Grafana dashboard's queries are valid PromQL (checked as recording rules)", async () => {
    const dashboard = JSON.parse(readFileSync(path.resolve(PROMETHEUS_DIR, '../grafana/pubflow.json'), 'utf8')) as {
      panels: Array<{ targets: Array<{ expr: string }> }>;
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const dir = tempDir('dashboard-queries');
    try {
      const file = path.join(dir, 'queries.yml');
      const record = (expr: string, i: number) => ({ record: `pubflow_dashboard:query_${i}`, expr });
      writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: exprs.map(record) }] }));
      const run = await runPromtool(promtool(), ['check', 'rules', file], dir);
      expect(run).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${exprs.length} rules found`) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('test rules: every case passes', async () => {
    const run = await runPromtool(promtool(), ['test', 'rules', TESTS]);
    expect(run).toEqual({ code: 0, out: expect.stringContaining('SUCCESS') });
  });

  describe('the cases fail when a rule is broken', () => {
    let dir: string;
    beforeAll(() => {
      dir = tempDir('alert-rules');
      copyFileSync(path.join(PROMETHEUS_DIR, TESTS), path.join(dir, TESTS));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** promtool's tests against alerts.yml with one rule's expression replaced. */
    async function withExpr(alert: string, expr: string) {
      const mutated: RulesFile = structuredClone(rules);
      for (const g of mutated.groups) for (const r of g.rules) if (r.alert === alert) r.expr = expr;
      writeFileSync(path.join(dir, RULES), YAML.stringify(mutated));
      return runPromtool(promtool(), ['test', 'rules', TESTS], dir);
    }

    test.each(alerts)('%s: never firing, and always firing, both fail its cases', async (alert) => {
      const never = await withExpr(alert, 'vector(1) == 0');
      expect({ alert, never: never.code, named: never.out.includes(alert) }).toEqual({ alert, never: 1, named: true });
      const always = await withExpr(alert, 'vector(1)');
      expect({ alert, always: always.code, named: always.out.includes(alert) }).toEqual({
        alert,
        always: 1,
        named: true,
      });
    });
  });
});
