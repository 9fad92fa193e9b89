/** Reading batch files: CSV by RFC 4180, JSON and YAML; every problem named by row and column before anything is sent. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkBatch, explainServerIssues, loadBatchFile } from '../../src/cli/batch-file';
import { CsvSyntaxError, parseCsv } from '../../src/cli/csv';
import { CliError } from '../../src/cli/errors';

let dir: string;
beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'pubflow-cli-batch-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};
const HEADER = 'accountId,platform,video,title,description,tags,publishAt,priority';

test('CSV: quoted fields hold commas, doubled quotes and line breaks; records keep their first line; blank lines are skipped', () => {
  const records = parseCsv('\ufeffa,b\r\n"x, y","say ""hi""\nthere"\n\n1,\n');
  expect(records).toEqual([
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['x, y', 'say "hi"\nthere'] },
    { line: 5, fields: ['1', ''] },
  ]);
});

test('CSV: an unclosed quote and a stray quote are errors naming the line', () => {
  expect(() => parseCsv('a,b\n"open,x\n')).toThrow(new CsvSyntaxError('a quoted field is never closed', 2));
  expect(() => parseCsv('a,b\nx,y"z\n')).toThrow(/^line 2: a quote inside an unquoted field/);
  expect(() => parseCsv('a\n"q"x\n')).toThrow(/^line 2: text after a closing quote/);
});

test('a CSV batch becomes the API body: video as {path}, tags split, numbers parsed, empty cells left out', () => {
  const file = write(
    'ok.csv',
    `${HEADER}\nacc,local,a.mp4,"Hi, there",,x; y,2026-12-01T09:00:00+08:00,3\nacc,local,b.mp4,Two,desc,,,\n`,
  );
  const src = loadBatchFile(file, { concurrency: 4, intervalSeconds: 2 });
  expect(src.body).toEqual({
    items: [
      {
        accountId: 'acc',
        platform: 'local',
        video: { path: 'a.mp4' },
        title: 'Hi, there',
        tags: ['x', 'y'],
        publishAt: '2026-12-01T09:00:00+08:00',
        priority: 3,
      },
      { accountId: 'acc', platform: 'local', video: { path: 'b.mp4' }, title: 'Two', description: 'desc' },
    ],
    concurrency: 4,
    spacing: { intervalSeconds: 2 },
  });
  expect(checkBatch(src)).toEqual([]);
});

test('every bad CSV row is named by row, line and column', () => {
  const file = write(
    'bad.csv',
    [
      HEADER,
      'acc,local,a.mp4,fine,,,,',
      'acc,local,,"multi',
      'line title",,,,',
      'acc,,a.mp4,t,,,yesterday,12',
      'acc,local,a.mp4,short',
    ].join('\n'),
  );
  expect(checkBatch(loadBatchFile(file))).toEqual([
    'row 2 (line 3), column video: is required',
    'row 3 (line 5), column platform: is required',
    'row 3 (line 5), column publishAt: must be ISO 8601 with an offset, e.g. 2026-12-01T09:00:00+08:00',
    'row 3 (line 5), column priority: Too big: expected number to be <=9',
    'row 4 (line 6): has 4 cells, the header has 8',
  ]);
});

test('a CSV header with an unknown, repeated or missing column is refused before any row is read', () => {
  const file = write('header.csv', 'accountId,Platform,video,platform,colour\nacc,local,a.mp4,local,red\n');
  let err: unknown;
  try {
    loadBatchFile(file);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CliError);
  expect((err as CliError).exitCode).toBe(2);
  expect((err as CliError).lines).toEqual([
    'column 4 "platform": appears twice',
    'column 5 "colour": unknown; the columns are accountId, platform, video, title, description, tags, publishAt, priority',
    'missing column: title',
  ]);
});

test('JSON and YAML: the API body or a list of items, with defaults merged under each item as the API does', () => {
  const json = write(
    'b.json',
    JSON.stringify({
      defaults: { platform: 'local', video: 'a.mp4' },
      items: [{ accountId: 'x', title: 't' }, { accountId: 'y' }],
    }),
  );
  const src = loadBatchFile(json);
  expect(src.body.defaults).toEqual({ platform: 'local', video: { path: 'a.mp4' } });
  expect(checkBatch(src)).toEqual(['items[1].title: is required']);

  const yaml = write(
    'b.yaml',
    '- {accountId: x, platform: local, video: a.mp4, title: t, tags: [a]}\n- {accountId: x}\n',
  );
  expect(checkBatch(loadBatchFile(yaml))).toEqual([
    'items[1].platform: is required',
    'items[1].video: is required',
    'items[1].title: is required',
  ]);
  expect(() => loadBatchFile(write('c.json', '{"items": '))).toThrow(/c\.json: not valid JSON/);
  expect(() => loadBatchFile(write('d.txt', 'x'))).toThrow(/cannot tell the format/);
});

test("the API's 400 about items[i].field is told in the file's terms: row and column for CSV", () => {
  const src = loadBatchFile(write('s.csv', `${HEADER}\nacc,local,a.mp4,t,,,,\nacc,local,b.mp4,u,,,,\n`));
  expect(
    explainServerIssues(src, [
      { field: 'items[1].video.path', message: 'no such file in the media root' },
      { field: 'items[0]', message: 'odd' },
      { field: 'concurrency', message: 'too big' },
    ]),
  ).toEqual([
    'row 2 (line 3), column video: no such file in the media root',
    'row 1 (line 2): odd',
    'concurrency: too big',
  ]);
});

test('examples/batch.csv (the README example) passes every check the CLI makes before sending', () => {
  const src = loadBatchFile(path.join(__dirname, '../../examples/batch.csv'));
  expect(checkBatch(src)).toEqual([]);
  expect(src.body.items).toHaveLength(3);
  expect(src.body.items[1]).toMatchObject({ title: 'Hello, again (2 of 3)', priority: 3 });
});
