import { UserError } from '../util/user-error';

/** A file that is not a model deepvision can read: truncated, not ONNX, too new, or unsafe. */
export class OnnxFormatError extends UserError {
  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = 'OnnxFormatError';
  }
}
