import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

const PYTHON = '/usr/bin/python3';
const SCRIPT = `
import sys, onnx
failed = 0
for path in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        print("ok", path)
    except Exception as e:
        failed += 1
        print("FAIL", path, str(e).replace("\\n", " "))
sys.exit(1 if failed else 0)
`;

/**
 * Runs the reference ONNX checker (Debian's python3-onnx, full check with shape inference) on model files: an
 * independent check of what deepvision writes. Returns the checker's report; throws when it is not installed.
 */
export function onnxCheck(files: string[]): { ok: boolean; report: string } {
  if (!fs.existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import onnx']).status !== 0) {
    throw new Error('the ONNX checker is not installed: run `bash scripts/install-system-deps.sh` (Debian package python3-onnx)');
  }
  const r = spawnSync(PYTHON, ['-c', SCRIPT, ...files], { encoding: 'utf8' });
  return { ok: r.status === 0, report: `${r.stdout}${r.stderr}` };
}
