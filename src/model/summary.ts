import { formatShape } from '../ir/shape';
import type { BuiltModel } from './build';

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * A torchinfo-style table: one row per module call (tree-indented, `type: depth-index`), its output shape and the
 * parameters it declares itself; then totals and the size of the parameters.
 */
export function formatSummary(built: BuiltModel): string {
  const counters = new Map<number, number>();
  const rows = built.summary.map((call) => {
    const index = (counters.get(call.depth) ?? 0) + 1;
    counters.set(call.depth, index);
    const label = call.depth === 0 ? call.type : `${'│    '.repeat(call.depth - 1)}├─${call.type}: ${call.depth}-${index}`;
    const name = call.path ? ` (${call.path})` : '';
    const shape = call.outputShapes.map(formatShape).join(', ');
    const params = call.ownParameters > 0 ? fmt(call.ownParameters) : '--';
    return [label + name, shape, params] as const;
  });
  const header = ['Layer (type:depth-idx)', 'Output Shape', 'Param #'] as const;
  const widths = [0, 1, 2].map((c) => Math.max(header[c]!.length, ...rows.map((r) => r[c]!.length)) + 3);
  const line = (cells: readonly string[]) => cells[0]!.padEnd(widths[0]!) + cells[1]!.padEnd(widths[1]!) + cells[2]!.padStart(widths[2]! - 3);
  const total = widths.reduce((a, b) => a + b, 0) - 3;
  const rule = '='.repeat(total);
  const params = built.parameters.filter((p) => !p.buffer);
  const trainable = params.filter((p) => p.trainable).reduce((n, p) => n + p.size, 0);
  const all = params.reduce((n, p) => n + p.size, 0);
  const buffers = built.parameters.filter((p) => p.buffer).reduce((n, p) => n + p.size, 0);
  const mb = (built.parameters.reduce((n, p) => n + p.size, 0) * 4) / 1e6;
  return [
    rule,
    line(header),
    rule,
    ...rows.map(line),
    rule,
    `Total params: ${fmt(all)}`,
    `Trainable params: ${fmt(trainable)}`,
    `Non-trainable params: ${fmt(all - trainable)}`,
    `Buffers (running statistics): ${fmt(buffers)}`,
    `Params + buffers size (MB): ${mb.toFixed(2)}`,
    rule,
    ...built.notes.map((n) => `Note: ${n}`),
  ].join('\n');
}
