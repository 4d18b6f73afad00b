import { Command } from 'commander';
import { formatReport, inspectModel } from '../../onnx/inspect';
import { readModelFile } from '../../onnx/read';
import { CutPoint, findCutPoints } from '../../import/cut-points';

export function inspectCommand(): Command {
  return new Command('inspect')
    .summary('describe any ONNX file')
    .description('Prints the inputs, outputs, IR version, opsets, op histogram and parameter count of an ONNX model (one built by deepvision or by any other tool), and for a pretrained classifier the values a new head could read (deepvision transfer --cut).')
    .argument('<file>', 'an .onnx file')
    .option('--json', 'print the report as JSON')
    .action((file: string, flags: { json?: boolean }) => {
      const model = readModelFile(file);
      const report = inspectModel(model);
      // Where a new head could read this model, for `transfer --cut`; any model that imports has some.
      let cutPoints: CutPoint[] | string;
      try {
        cutPoints = findCutPoints(model, file);
      } catch (err) {
        cutPoints = (err as Error).message;
      }
      if (flags.json) console.log(JSON.stringify({ ...report, cutPoints }, null, 2));
      else console.log(`${formatReport(file, report)}\n${formatCutPoints(cutPoints)}`);
    });
}

function formatCutPoints(points: CutPoint[] | string): string {
  if (typeof points === 'string') return `Cut points for transfer: none (${points})`;
  if (points.length === 0) return 'Cut points for transfer: none found (no Gemm/MatMul or 4-D feature map)';
  const width = Math.max(...points.map((p) => p.name.length)) + 2;
  return ['Cut points for transfer (deepvision transfer FILE --cut NAME; shapes for one image):',
    ...points.map((p) => `  ${p.name.padEnd(width)}[${p.shape.join(', ')}]  ${p.why}`)].join('\n');
}
