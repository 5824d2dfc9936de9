/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * `strand server` process: sign in through the form, start a pipeline from the Start page (two
 * samples, one of which fails), watch the run finish in the sample × step matrix, read the
 * failed job's log, download the results as CSV, redrive the run once the failure's cause is
 * gone, read one step's metrics, see why jobs wait and stop a run. With STRAND_SCREENSHOTS=1 it
 * also writes the screenshots the README shows (docs/images/dashboard-*.png); otherwise it leaves
 * the tree as it was. Without /usr/bin/chromium it is skipped, unless STRAND_REQUIRE_BROWSER=1 (as
 * CI sets), which makes a missing browser a failure.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inlinePipeline, spawnStrand, waitUntil } from '../pipeline/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const required = process.env.STRAND_REQUIRE_BROWSER === '1';
if (required && !existsSync(CHROMIUM))
  throw new Error(`STRAND_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing (apt-get install chromium)`);
const screenshots = process.env.STRAND_SCREENSHOTS === '1';

const ROOT = process.cwd();
const UI_DIR = join(ROOT, 'dist', 'ui');

/** The newest modification time of a file under `path` (or of `path` itself). */
function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

/** Builds dist/ui when it is missing or older than what it is built from. */
function ensureFrontEnd(): void {
  const index = join(UI_DIR, 'index.html');
  const sources = Math.max(
    newest(join(ROOT, 'ui')),
    newest(join(ROOT, 'vite.config.ts')),
    newest(join(ROOT, 'src', 'server', 'ui', 'types.ts')),
  );
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'],
    { cwd: ROOT, stdio: 'inherit' },
  );
}

/** The `[strand]` key pair the server wrote to its home. */
function keysOf(home: string): { id: string; secret: string } {
  const text = readFileSync(join(home, 'credentials'), 'utf8');
  const section = text.split(/^\[/m).find((s) => s.startsWith('strand]')) ?? '';
  const value = (key: string) => new RegExp(`^${key}\\s*=\\s*(\\S+)`, 'm').exec(section)?.[1];
  const id = value('aws_access_key_id');
  const secret = value('aws_secret_access_key');
  if (!id || !secret) throw new Error(`no [strand] key pair in ${home}/credentials`);
  return { id, secret };
}

/**
 * Two samples through two steps; `greet` fails for the sample `bad` (exit 3, with a message), on
 * both of its attempts, while the file `refuse` is there.
 */
const greetings = (refuse: string) => [
  'name: greetings',
  'description: Greets each sample; the sample "bad" cannot be greeted',
  'samples: [ { id: good }, { id: bad } ]',
  'defaults: { vcpus: 0.25, memory: 64MiB }',
  'steps:',
  '  greet:',
  '    image: debian:bookworm-slim',
  `    command: [sh, -c, 'if [ "$$1" = bad ] && [ -e "${refuse}" ]; then echo "cannot greet $$1: no such person" >&2; exit 3; fi; printf "sample\\tgreeting\\n%s\\thello-%s\\n" "$$1" "$$1" > greet.tsv', sh, $SAMPLE]`,
  '    outputs: { GREETING: greet.tsv }',
  '    retry: 1',
  '  shout:',
  '    image: debian:bookworm-slim',
  "    command: [awk, '{ print toupper($$0) }', $GREETING]",
  '    stdout: shout.txt',
  '    outputs: { SHOUT: shout.txt }',
  'results:',
  '  greet: { from: greet.tsv, format: tsv }',
];

/**
 * More samples than this machine has cores, each holding 1 vCPU until `holder` ends: some run,
 * the others wait for room (the server's compute environment is this machine's size).
 */
const holdingPipeline = (holder: number) => [
  'name: holding',
  'description: Each sample holds one vCPU until released',
  `samples: [ ${Array.from({ length: cpus().length + 2 }, (_, i) => `{ id: s${i + 1} }`).join(', ')} ]`,
  `params: { HOLDER: "${holder}" }`,
  'defaults: { vcpus: 1, memory: 64MiB }',
  'steps:',
  '  hold:',
  '    image: debian:bookworm-slim',
  '    command: [tail, -f, /dev/null, --pid=$HOLDER]',
];

describe.skipIf(!existsSync(CHROMIUM))('the dashboard in a browser', () => {
  let server: ReturnType<typeof spawnStrand> | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  let endpoint: string;
  let home: string;
  let holder: ChildProcess | undefined;
  /** While this file is there, `greet` fails for the sample `bad`. */
  let refuse: string;
  const pageErrors: string[] = [];
  /** Requests the page made to anywhere but the server (there must be none: no CDN, no fonts). */
  const elsewhere: string[] = [];

  beforeAll(async () => {
    ensureFrontEnd();
    refuse = join(mkdtempSync(join(tmpdir(), 'strand-refuse-')), 'refuse');
    writeFileSync(refuse, '');
    const p = inlinePipeline(greetings(refuse));
    home = p.home;
    holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    const held = inlinePipeline(holdingPipeline(holder.pid!));
    server = spawnStrand([
      'server',
      '--home',
      home,
      '--port',
      '0',
      '--pipeline',
      p.file,
      '--pipeline',
      held.file,
    ]);
    endpoint = await waitUntil(
      'strand server to print its endpoint',
      () => {
        const m = /^endpoint: (\S+)$/m.exec(server!.out());
        if (!m && server!.err().includes('error')) throw new Error(server!.err());
        return m?.[1];
      },
      60_000,
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    // Beside other test files on two cores, a page can take longer than Playwright's 30 s.
    context.setDefaultTimeout(60_000);
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(`${endpoint}/`) && !r.url().startsWith('data:'))
        elsewhere.push(r.url());
    });
    // The refused sign-in's 401 is logged by the browser as a failed load: not an error of the page.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
        pageErrors.push(m.text());
    });
  }, 180_000);

  afterAll(async () => {
    holder?.kill();
    await browser?.close();
    server?.kill('SIGTERM');
    await server?.done;
  });

  /** A screenshot of the page down to the end of `upTo` (the page's content by default). */
  const shot = async (name: string, upTo = 'main.content') => {
    if (!screenshots) return;
    mkdirSync(join(ROOT, 'docs', 'images'), { recursive: true });
    const box = await page.locator(upTo).first().boundingBox();
    await page.screenshot({
      path: join(ROOT, 'docs', 'images', `dashboard-${name}.png`),
      fullPage: true,
      clip: {
        x: 0,
        y: 0,
        width: 1440,
        height: Math.ceil((box?.y ?? 0) + (box?.height ?? 900)) + 12,
      },
    });
  };

  it('signs in, starts a run, follows it to its end, reads the failed job’s log, downloads the results, redrives the run, shows a step’s metrics, shows why jobs wait and stops a run', async () => {
    const { id, secret } = keysOf(home);

    // Signed out, any page is the sign-in form, which says where the keys are.
    await page.goto(`${endpoint}/ui/`);
    const form = page.locator('form.signin-card');
    await form.waitFor();
    expect(await form.textContent()).toContain('$STRAND_HOME/credentials');
    await page.getByLabel('Access key ID').fill(id);
    await page.getByLabel('Secret access key').fill('not-the-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('Secret access key').fill(secret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Executions' }).waitFor();

    // Start a run of the pipeline the server was given, of both samples.
    const nav = page.locator('nav.topbar');
    await nav.getByRole('link', { name: 'Start a run' }).click();
    await page.getByRole('radio', { name: 'greetings' }).check();
    expect(await page.locator('.sample-list input[type=checkbox]:checked').count()).toBe(2);
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/ui\/executions\/greetings/);
    const execution = decodeURIComponent(new URL(page.url()).pathname.split('/').at(-1)!);

    // The matrix follows the run live to its end: `bad` fails at greet, `good` goes through.
    const cell = (sample: string, step: string) =>
      page.locator(`td.cell[data-sample="${sample}"][data-step="${step}"]`);
    await page.locator('h1 .badge[data-status="FAILED"]').waitFor({ timeout: 90_000 });
    await cell('good', 'shout').and(page.locator('[data-status="SUCCEEDED"]')).waitFor();
    expect(await cell('good', 'greet').getAttribute('data-status')).toBe('SUCCEEDED');
    expect(await cell('bad', 'greet').getAttribute('data-status')).toBe('FAILED');
    expect(await cell('bad', 'shout').getAttribute('data-status')).not.toBe('SUCCEEDED');
    // The graph is drawn (the pipeline's sample Map holds its steps) and coloured.
    expect(await page.locator('svg.state-graph g.g-state').count()).toBeGreaterThan(1);
    expect(await page.locator('svg.state-graph g.g-group').count()).toBeGreaterThan(0);
    expect(await page.locator('svg.state-graph g.g-state.tone-bad').count()).toBeGreaterThan(0);
    expect(await cell('bad', 'greet').getAttribute('data-attempts')).toBe('2');
    // One timeline bar per attempt: greet once for good and twice for bad, shout once.
    expect(await page.locator('.tl-bar').count()).toBe(4);
    expect(await page.locator('.tl-bar[data-attempt="2"]').count()).toBe(1);
    // Hovering a bar tells the attempt's times and what it used.
    await page.locator('.tl-bar[data-attempt="2"]').hover();
    const card = page.getByRole('tooltip');
    await card.waitFor();
    expect(await card.textContent()).toMatch(/greet · bad.*attempt2.*CPU time.*peak memory/);
    await shot('execution', '.exec-grid');

    // The failed cell opens its job, whose log is the tool's error.
    await cell('bad', 'greet').click();
    await page.waitForURL(/\/ui\/jobs\//);
    const log = page.locator('pre.log-text[data-complete="true"]');
    await log.waitFor();
    expect(await log.textContent()).toContain('cannot greet bad: no such person');
    expect(await page.locator('h1 .badge').getAttribute('data-status')).toBe('FAILED');
    await shot('job');

    // The results, as CSV: a row per sample × step of the run.
    await nav.getByRole('link', { name: 'Results' }).click();
    await page.locator('table.results tbody tr').first().waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    const csv = readFileSync(await download.path(), 'utf8');
    const rows = parse(csv, { columns: true }) as Record<string, string>[];
    const ofRun = rows.filter((r) => r.execution === execution);
    const statusOf = (sample: string, step: string) =>
      ofRun.find((r) => r.sample === sample && r.step === step)?.status;
    expect(statusOf('good', 'greet')).toBe('SUCCEEDED');
    expect(statusOf('good', 'shout')).toBe('SUCCEEDED');
    expect(statusOf('bad', 'greet')).toBe('FAILED');
    expect(ofRun.filter((r) => r.sample === 'bad' && r.step === 'shout')).toEqual([]);

    // Once what made `bad` fail is gone, Redrive carries the run on to its end: `bad` is
    // greeted and shouted; `good`, which succeeded, does not run again.
    rmSync(refuse);
    await nav.getByRole('link', { name: 'Executions' }).click();
    await page
      .locator('table.executions tbody tr', { hasText: execution })
      .getByRole('link', { name: execution })
      .click();
    await page.locator('h1 .badge[data-status="FAILED"]').waitFor();
    await page.getByRole('button', { name: 'Redrive' }).click();
    await page.locator('h1 .badge[data-status="SUCCEEDED"]').waitFor({ timeout: 90_000 });
    await cell('bad', 'shout').and(page.locator('[data-status="SUCCEEDED"]')).waitFor();
    expect(await cell('bad', 'greet').getAttribute('data-status')).toBe('SUCCEEDED');
    expect(await cell('good', 'greet').getAttribute('data-attempts')).toBe('1');
    expect(await page.getByRole('button', { name: 'Redrive' }).isDisabled()).toBe(true);

    // One step's metrics: the columns of the file its `results:` entry names, a row per sample.
    await nav.getByRole('link', { name: 'Results' }).click();
    await page.getByRole('tab', { name: 'greet' }).click();
    // A controlled box: it shows checked once the page's address says so (check() can look too soon).
    await page.getByLabel('metrics').click();
    await page.waitForURL(/[?&]metrics=true/);
    await page.locator('table.results td', { hasText: 'hello-bad' }).waitFor();
    const headers = await page.locator('table.results thead th').allTextContents();
    expect(headers).toContain('greeting');
    expect(headers).not.toContain('status');
    const greetingOf = async (sample: string) => {
      const cells = await page
        .locator('table.results tbody tr', {
          has: page.locator(`td:text-is("${sample}")`),
        })
        .first()
        .locator('td')
        .allTextContents();
      return cells[headers.indexOf('greeting')];
    };
    expect(await greetingOf('good')).toBe('hello-good');
    expect(await greetingOf('bad')).toBe('hello-bad');

    // A run that holds more vCPUs than there are: the Batch page says what runs and why the
    // rest waits.
    await nav.getByRole('link', { name: 'Start a run' }).click();
    await page.getByRole('radio', { name: 'holding' }).check();
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/ui\/executions\/holding/);
    const holding = decodeURIComponent(new URL(page.url()).pathname.split('/').at(-1)!);
    await nav.getByRole('link', { name: 'Batch' }).click();
    const running = page.locator('.panel', { hasText: 'Running (' }).locator('tbody tr', {
      hasText: 'holding-hold',
    });
    const waiting = page.locator('table.waiting-jobs tbody tr', { hasText: 'holding-hold' });
    await waitUntil('the Batch page to show jobs running and waiting', async () =>
      (await running.count()) === cpus().length && (await waiting.count()) === 2 ? true : undefined,
    );
    for (const text of await waiting.locator('.waiting').allTextContents())
      expect(text).toMatch(/needs 1 vCPU/);
    expect(await waiting.first().locator('.waiting').getAttribute('class')).toContain(
      'kind-resources',
    );
    expect(await page.locator('.panel', { hasText: 'Job queues' }).textContent()).toContain(
      'default',
    );
    await shot('batch');

    // The list of executions: both runs, the redriven one succeeded, the other still running;
    // it changes live when that one ends.
    await nav.getByRole('link', { name: 'Executions' }).click();
    const row = (name: string) => page.locator('table.executions tbody tr', { hasText: name });
    expect(await row(execution).locator('.badge').getAttribute('data-status')).toBe('SUCCEEDED');
    expect(await row(holding).locator('.badge').getAttribute('data-status')).toBe('RUNNING');
    await shot('executions');

    // Stop: asked to confirm, then the run is ABORTED and its jobs end (the list follows live).
    await row(holding).getByRole('link', { name: holding }).click();
    await page.locator('h1 .badge[data-status="RUNNING"]').waitFor();
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('h1 .badge[data-status="ABORTED"]').waitFor({ timeout: 60_000 });
    await nav.getByRole('link', { name: 'Executions' }).click();
    await row(holding).locator('.badge[data-status="ABORTED"]').waitFor();
    await nav.getByRole('link', { name: 'Batch' }).click();
    await page.getByText('No job waits.').waitFor({ timeout: 60_000 });
    await page.getByText('Nothing runs.').waitFor({ timeout: 60_000 });

    // Signing out ends the session: the form again, even after a reload.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('form.signin-card').waitFor();
    await page.reload();
    await page.locator('form.signin-card').waitFor();

    expect(pageErrors).toEqual([]);
    expect(elsewhere).toEqual([]);
  }, 240_000);
});
