import { Command } from 'commander';
import { formatReport, inspectModel } from '../../onnx/inspect';
import { readModelFile } from '../../onnx/read';

export function inspectCommand(): Command {
  return new Command('inspect')
    .summary('describe any ONNX file')
    .description('Prints the inputs, outputs, IR version, opsets, op histogram and parameter count of an ONNX model (one built by deepvision or by any other tool).')
    .argument('<file>', 'an .onnx file')
    .option('--json', 'print the report as JSON')
    .action((file: string, flags: { json?: boolean }) => {
      const report = inspectModel(readModelFile(file));
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatReport(file, report));
    });
}
