import {
  buildResult,
  DEFAULT_OUT,
  evaluate,
  exitCodeFor,
  formatTable,
  missedGoals,
  parseArgs,
  type Figure,
  type Machine,
} from '../scripts/bench/report';

/** The bench's pure parts (goals, table, JSON, --check); the timed parts only run in `npm run bench`. */

const machine: Machine = {
  nproc: 2,
  cpuModel: 'Test CPU',
  node: 'v20.0.0',
  platform: 'linux test',
  loadAverage: { start: 1.5, end: 2.25 },
};

const ratioFigure = (measured: number, reference: number): Figure => ({
  id: 'me_vs_express_ratio',
  measured: { label: '/me', value: measured, unit: 'req/s', p50Ms: 5, p99Ms: 20 },
  reference: { label: 'Express hello', value: reference, unit: 'req/s', p50Ms: 2, p99Ms: 8 },
  goal: { op: '>=', target: 0.6, of: 'ratio' },
});

const valueFigure = (value: number): Figure => ({
  id: 'cold_start',
  measured: { label: 'npm start to ready', value, unit: 's' },
  goal: { op: '<=', target: 1.5, of: 'value' },
});

describe('bench report', () => {
  it('when a ratio reaches its goal, then the figure is met and the ratio is measured / reference', () => {
    const f = evaluate(ratioFigure(700, 1000));
    expect(f.ratio).toBeCloseTo(0.7);
    expect(f.met).toBe(true);
  });

  it('when a ratio falls short, then the figure is missed', () => {
    expect(evaluate(ratioFigure(500, 1000)).met).toBe(false);
  });

  it('when a value goal is an upper bound, then equal meets it and above misses it', () => {
    expect(evaluate(valueFigure(1.5)).met).toBe(true);
    expect(evaluate(valueFigure(1.51)).met).toBe(false);
  });

  it('when a measurement is invalid (errors under load), then it is missed whatever its ratio', () => {
    const f = evaluate({ ...ratioFigure(900, 1000), invalid: '3 non-2xx answers or errors' });
    expect(f.met).toBe(false);
  });

  it('when a figure has no goal or was skipped, then it is neither met nor missed', () => {
    const noGoal = evaluate({ ...ratioFigure(1, 1000), goal: undefined });
    const skipped = evaluate({
      id: 'fresh_clone_start',
      measured: null,
      goal: valueFigure(1).goal,
    });
    expect(noGoal.met).toBeNull();
    expect(skipped.met).toBeNull();
    expect(skipped.ratio).toBeNull();
  });

  it('when the reference measured zero, then there is no ratio and a ratio goal is missed', () => {
    const f = evaluate(ratioFigure(700, 0));
    expect(f.ratio).toBeNull();
    expect(f.met).toBe(false);
  });

  it('when --check is given and a goal is missed, then the exit code is non-zero; without --check it is 0', () => {
    const result = buildResult(new Date(0), machine, { quick: false }, [
      ratioFigure(700, 1000),
      valueFigure(6.7),
    ]);
    expect(missedGoals(result).map((f) => f.id)).toEqual(['cold_start']);
    expect(exitCodeFor(result, { check: true })).toBe(1);
    expect(exitCodeFor(result, { check: false })).toBe(0);
  });

  it('when every goal is met, then --check exits 0', () => {
    const result = buildResult(new Date(0), machine, { quick: false }, [
      ratioFigure(700, 1000),
      valueFigure(1.2),
    ]);
    expect(exitCodeFor(result, { check: true })).toBe(0);
  });

  it('when the result is written as JSON, then it round-trips with the machine and every figure', () => {
    const result = buildResult(new Date('2026-12-01T18:00:00Z'), machine, { quick: true }, [
      ratioFigure(700, 1000),
    ]);
    const parsed = JSON.parse(JSON.stringify(result)) as typeof result;
    expect(parsed).toEqual(result);
    expect(parsed.ranAt).toBe('2026-12-01T18:00:00.000Z');
    expect(parsed.machine.nproc).toBe(2);
    expect(parsed.figures[0]).toMatchObject({ id: 'me_vs_express_ratio', met: true });
  });

  it('when the table is printed, then it has one row per figure with measured, reference, ratio, goal and verdict', () => {
    const result = buildResult(new Date('2026-12-01T18:00:00Z'), machine, { quick: false }, [
      ratioFigure(1063, 8719),
      { ...valueFigure(6.7), note: 'runs: 6.5, 6.7, 6.9 s' },
      { id: 'fresh_clone_start', measured: null, goal: { op: '<=', target: 8, of: 'value' } },
    ]);
    const table = formatTable(result);
    const lines = table.split('\n');
    expect(lines[1]).toContain('2 × Test CPU, Node v20.0.0');
    const row = lines.find((l) => l.startsWith('| me_vs_express_ratio'))!;
    expect(row).toContain('/me 1,063 req/s (p50 5.00 ms, p99 20.0 ms)');
    expect(row).toContain('Express hello 8,719 req/s');
    expect(row).toContain('| 0.12 ');
    expect(row).toContain('ratio ≥ 0.6');
    expect(row).toMatch(/\| NO +\|$/);
    expect(lines.find((l) => l.startsWith('| cold_start'))).toMatch(/value ≤ 1.5 \| NO +\|$/);
    expect(lines.find((l) => l.startsWith('| fresh_clone_start'))).toMatch(/skipped +\|$/);
    expect(table).toContain('- cold_start: runs: 6.5, 6.7, 6.9 s');
  });

  it('when arguments are parsed, then --quick skips the clone, --out sets the file and unknown ones are refused', () => {
    expect(parseArgs([])).toEqual({
      quick: false,
      check: false,
      out: DEFAULT_OUT,
      skipClone: false,
    });
    expect(parseArgs(['--quick', '--check', '--out', 'x.json'])).toEqual({
      quick: true,
      check: true,
      out: 'x.json',
      skipClone: true,
    });
    expect(parseArgs(['--out=y.json']).out).toBe('y.json');
    expect(parseArgs(['--only', 'cold_start']).only).toEqual(['cold_start']);
    expect(parseArgs(['--only=cold_start,fresh_clone_start']).only).toEqual([
      'cold_start',
      'fresh_clone_start',
    ]);
    expect(() => parseArgs(['--only', 'peak_rss'])).toThrow(/--only takes a list of/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown argument --fast/);
  });
});
