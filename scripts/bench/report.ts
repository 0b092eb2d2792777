/**
 * The bench's pure parts: figures, goals, the table, the JSON document and the `--check`
 * verdict. No I/O and no clock here, so test/bench-report.test.ts can run them directly.
 */

export interface BenchOptions {
  /** Short smoke run: short phases, one cold start, no fresh-clone start. */
  quick: boolean;
  /** Exit non-zero when a figure misses its goal. */
  check: boolean;
  /** Where the JSON document goes. */
  out: string;
  /** Skip the fresh-clone start (it runs `npm ci`, which takes a while). */
  skipClone: boolean;
  /** Measure only these start-up figures (`--only cold_start,fresh_clone_start`). */
  only?: StartFigure[];
}

/** The figures `--only` can run by themselves: neither needs the load phases before it. */
export const START_FIGURES = ['cold_start', 'fresh_clone_start'] as const;
export type StartFigure = (typeof START_FIGURES)[number];

function parseOnly(list: string): StartFigure[] {
  const ids = list.split(',').filter(Boolean);
  const unknown = ids.filter((id) => !(START_FIGURES as readonly string[]).includes(id));
  if (!ids.length || unknown.length)
    throw new Error(`--only takes a list of ${START_FIGURES.join(', ')} (got ${list})`);
  return ids as StartFigure[];
}

export const DEFAULT_OUT = 'dist/bench/results.json';

export function parseArgs(argv: readonly string[]): BenchOptions {
  const opts: BenchOptions = { quick: false, check: false, out: DEFAULT_OUT, skipClone: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') opts.quick = true;
    else if (a === '--check') opts.check = true;
    else if (a === '--skip-clone') opts.skipClone = true;
    else if (a === '--out' && argv[i + 1] !== undefined) opts.out = argv[++i]!;
    else if (a.startsWith('--out=')) opts.out = a.slice('--out='.length);
    else if (a === '--only' && argv[i + 1] !== undefined) opts.only = parseOnly(argv[++i]!);
    else if (a.startsWith('--only=')) opts.only = parseOnly(a.slice('--only='.length));
    else
      throw new Error(
        `unknown argument ${a} (known: --quick, --check, --skip-clone, --out FILE, --only LIST)`,
      );
  }
  if (opts.quick) opts.skipClone = true;
  return opts;
}

/** One measured quantity: a rate, a latency or a size, with latencies when it was a load. */
export interface Measure {
  label: string;
  value: number;
  unit: string;
  p50Ms?: number;
  p99Ms?: number;
}

export interface Goal {
  op: '>=' | '<=';
  target: number;
  /** Whether the goal bounds the ratio to the reference or the measured value itself. */
  of: 'ratio' | 'value';
}

export interface Figure {
  id: string;
  /** null: not measured in this run (skipped); never counts as met or missed. */
  measured: Measure | null;
  reference?: Measure;
  goal?: Goal;
  /** Set when the measurement itself is not trustworthy (errors, non-2xx answers): a miss. */
  invalid?: string;
  note?: string;
}

export interface EvaluatedFigure extends Figure {
  ratio: number | null;
  /** null when there is no goal or nothing was measured. */
  met: boolean | null;
}

export function evaluate(f: Figure): EvaluatedFigure {
  const ratio =
    f.measured && f.reference && f.reference.value > 0
      ? f.measured.value / f.reference.value
      : null;
  let met: boolean | null = null;
  if (f.goal && f.measured) {
    const subject = f.goal.of === 'ratio' ? ratio : f.measured.value;
    if (f.invalid) met = false;
    else if (subject === null || !Number.isFinite(subject)) met = false;
    else met = f.goal.op === '>=' ? subject >= f.goal.target : subject <= f.goal.target;
  }
  return { ...f, ratio, met };
}

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  platform: string;
  /** 1-minute load averages at the start and end of the run: how shared the machine was. */
  loadAverage: { start: number; end: number };
}

export interface BenchResult {
  ranAt: string;
  machine: Machine;
  options: Pick<BenchOptions, 'quick'>;
  figures: EvaluatedFigure[];
}

export function buildResult(
  ranAt: Date,
  machine: Machine,
  options: Pick<BenchOptions, 'quick'>,
  figures: readonly Figure[],
): BenchResult {
  return {
    ranAt: ranAt.toISOString(),
    machine,
    options: { quick: options.quick },
    figures: figures.map(evaluate),
  };
}

/** Goals missed in a run; `--check` fails when this is not empty. */
export function missedGoals(result: BenchResult): EvaluatedFigure[] {
  return result.figures.filter((f) => f.met === false);
}

export function exitCodeFor(result: BenchResult, opts: Pick<BenchOptions, 'check'>): number {
  return opts.check && missedGoals(result).length > 0 ? 1 : 0;
}

function number(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function formatMeasure(m: Measure | null | undefined): string {
  if (!m) return '-';
  let s = `${m.label} ${number(m.value)} ${m.unit}`;
  if (m.p50Ms !== undefined && m.p99Ms !== undefined) {
    s += ` (p50 ${number(m.p50Ms)} ms, p99 ${number(m.p99Ms)} ms)`;
  }
  return s;
}

export function formatGoal(g: Goal | undefined): string {
  if (!g) return '-';
  const subject = g.of === 'ratio' ? 'ratio' : 'value';
  return `${subject} ${g.op === '>=' ? '≥' : '≤'} ${g.target}`;
}

function formatMet(f: EvaluatedFigure): string {
  if (!f.measured) return 'skipped';
  if (f.met === null) return '-';
  const verdict = f.met ? 'yes' : 'NO';
  return f.invalid ? `${verdict} (${f.invalid})` : verdict;
}

/** A Markdown table (BENCHMARKS.md takes it as printed). */
export function formatTable(result: BenchResult): string {
  const header = ['figure', 'measured', 'reference', 'ratio', 'goal', 'met'];
  const rows = result.figures.map((f) => [
    f.id,
    formatMeasure(f.measured),
    formatMeasure(f.reference),
    f.ratio === null ? '-' : f.ratio.toFixed(2),
    formatGoal(f.goal),
    formatMet(f),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  const rule = '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|';
  const m = result.machine;
  const notes = result.figures
    .filter((f) => f.note)
    .map((f) => `- ${f.id}: ${f.note}`)
    .join('\n');
  return [
    `Ran ${result.ranAt}${result.options.quick ? ' (--quick: short phases, not a measurement)' : ''}`,
    `on ${m.nproc} × ${m.cpuModel}, Node ${m.node} (${m.platform}), ` +
      `load average ${m.loadAverage.start.toFixed(1)} at the start, ${m.loadAverage.end.toFixed(1)} at the end`,
    '',
    line(header),
    rule,
    ...rows.map(line),
    ...(notes ? ['', notes] : []),
  ].join('\n');
}
