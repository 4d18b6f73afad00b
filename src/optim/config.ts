/** Optimizers deepvision emits as ONNX graphs, with PyTorch's hyperparameter names and defaults. */
export type OptimizerConfig =
  | { kind: 'sgd'; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }
  | { kind: 'adam' | 'adamw'; beta1?: number; beta2?: number; eps?: number; weightDecay?: number };

export interface OptimizerOptions {
  /** Scale all gradients so that their global L2 norm is at most this (torch.nn.utils.clip_grad_norm_). */
  clipGradNorm?: number;
}

/** Per-parameter state tensors (same shape as the parameter), named as in PyTorch's optimizer state. */
export function slotNames(config: OptimizerConfig): string[] {
  if (config.kind === 'sgd') return (config.momentum ?? 0) > 0 ? ['momentum_buffer'] : [];
  return ['exp_avg', 'exp_avg_sq'];
}

export function describeOptimizer(config: OptimizerConfig): string {
  if (config.kind === 'sgd') {
    const m = config.momentum ?? 0;
    return `SGD(momentum=${m}${config.nesterov ? ', nesterov' : ''}, weight_decay=${config.weightDecay ?? 0})`;
  }
  const name = config.kind === 'adam' ? 'Adam' : 'AdamW';
  return `${name}(betas=(${config.beta1 ?? 0.9}, ${config.beta2 ?? 0.999}), eps=${config.eps ?? 1e-8}, weight_decay=${config.weightDecay ?? (config.kind === 'adamw' ? 0.01 : 0)})`;
}

export function validateOptimizer(config: OptimizerConfig): void {
  const check = (name: string, v: number | undefined, ok: (v: number) => boolean, range: string) => {
    if (v !== undefined && !(Number.isFinite(v) && ok(v))) throw new Error(`optimizer ${config.kind}: ${name} must be ${range}, got ${v}`);
  };
  check('weightDecay', config.weightDecay, (v) => v >= 0, '>= 0');
  if (config.kind === 'sgd') {
    check('momentum', config.momentum, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('dampening', config.dampening, (v) => v >= 0 && v <= 1, 'in [0, 1]');
    if (config.nesterov && !((config.momentum ?? 0) > 0 && (config.dampening ?? 0) === 0)) {
      throw new Error('optimizer sgd: Nesterov momentum needs momentum > 0 and dampening 0 (as in PyTorch)');
    }
  } else {
    check('beta1', config.beta1, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('beta2', config.beta2, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('eps', config.eps, (v) => v > 0, '> 0');
  }
}
